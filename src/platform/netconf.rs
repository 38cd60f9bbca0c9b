//! What the system's network manager is told, computed without touching the
//! system (sans-IO): a SET OPTIONS change merged into the interface's whole
//! IPv4 set-up, the systemd-networkd `.network` file that says it, and the
//! `nmcli` argument vectors that say it to NetworkManager.
//!
//! Nothing here runs a program or writes a file (`netapply` does); nothing
//! here ever builds a shell string: every value goes into its own argument.

use super::NetworkSettings;
use std::net::Ipv4Addr;

/// The interface's whole IPv4 set-up, as lintel asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Setup {
    pub dhcp: bool,
    /// Address and prefix length (static set-up).
    pub address: Option<(Ipv4Addr, u8)>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

impl Default for Ipv4Setup {
    /// What a controller has before anyone sets it: DHCP.
    fn default() -> Self {
        Ipv4Setup {
            dhcp: true,
            address: None,
            gateway: None,
            dns: Vec::new(),
        }
    }
}

/// A netmask's prefix length, or None when its ones are not contiguous.
pub fn prefix_len(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then(|| u8::try_from(ones).unwrap_or(32))
}

/// `previous` with `change` applied: what the interface should have now.
/// Refuses a change that leaves a static set-up without an address.
pub fn merge(previous: &Ipv4Setup, change: &NetworkSettings) -> Result<Ipv4Setup, String> {
    let mut next = previous.clone();
    let dhcp_stays_on = change.dhcp.is_none() && previous.dhcp && change.ip_address.is_none();
    if dhcp_stays_on && (change.net_mask.is_some() || change.gateway.is_some()) {
        // Under DHCP a mask or gateway alone has nowhere to go: refused, not dropped.
        return Err("DHCP is on: NetMask or GATEIPAddress needs IPAddress or DHCP=0".into());
    }
    if let Some(dhcp) = change.dhcp {
        next.dhcp = dhcp;
    }
    if change.ip_address.is_some() || change.net_mask.is_some() {
        let (old_ip, old_prefix) = previous.address.map_or((None, 24), |(ip, p)| (Some(ip), p));
        let prefix = match change.net_mask {
            Some(mask) => {
                prefix_len(mask).ok_or_else(|| format!("netmask {mask} is not contiguous"))?
            }
            None => old_prefix,
        };
        next.address = change.ip_address.or(old_ip).map(|ip| (ip, prefix));
        // An address given without DHCP=1 in the same change means a static set-up.
        if change.ip_address.is_some() && change.dhcp.is_none() {
            next.dhcp = false;
        }
    }
    if let Some(gw) = change.gateway {
        next.gateway = (!gw.is_unspecified()).then_some(gw);
    }
    if change.dns.is_some() || change.dns2.is_some() {
        let old = |i: usize| previous.dns.get(i).copied();
        next.dns = [change.dns.or(old(0)), change.dns2.or(old(1))]
            .into_iter()
            .flatten()
            .filter(|a| !a.is_unspecified())
            .collect();
    }
    if !next.dhcp && next.address.is_none() {
        return Err("a static set-up needs IPAddress".into());
    }
    Ok(next)
}

/// The first line of every file lintel writes, so it only ever reads back its own.
const MARK: &str = "# Written by lintel from its PUSH server's SET OPTIONS.";

/// The systemd-networkd `.network` file for `iface`.
pub fn networkd_file(iface: &str, setup: &Ipv4Setup) -> String {
    let mut s = format!("{MARK}\n[Match]\nName={iface}\n\n[Network]\n");
    s.push_str(if setup.dhcp {
        "DHCP=ipv4\n"
    } else {
        "DHCP=no\n"
    });
    if !setup.dhcp {
        if let Some((ip, prefix)) = setup.address {
            s.push_str(&format!("Address={ip}/{prefix}\n"));
        }
        if let Some(gw) = setup.gateway {
            s.push_str(&format!("Gateway={gw}\n"));
        }
    }
    for d in &setup.dns {
        s.push_str(&format!("DNS={d}\n"));
    }
    s
}

/// Reads back a file [`networkd_file`] wrote (None for any other file).
pub fn parse_networkd_file(text: &str) -> Option<Ipv4Setup> {
    if !text.starts_with(MARK) {
        return None;
    }
    let mut setup = Ipv4Setup {
        dhcp: false,
        ..Ipv4Setup::default()
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "DHCP" => setup.dhcp = value != "no",
            "Address" => {
                let (ip, prefix) = value.split_once('/')?;
                setup.address = Some((ip.parse().ok()?, prefix.parse().ok()?));
            }
            "Gateway" => setup.gateway = Some(value.parse().ok()?),
            "DNS" => setup.dns.push(value.parse().ok()?),
            _ => {}
        }
    }
    Some(setup)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// `nmcli connection modify` for `connection` with `setup`.
pub fn nmcli_modify(connection: &str, setup: &Ipv4Setup) -> Vec<String> {
    let mut v = args(&["nmcli", "connection", "modify", connection]);
    let dns = setup
        .dns
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if setup.dhcp {
        v.extend(args(&[
            "ipv4.method",
            "auto",
            "ipv4.addresses",
            "",
            "ipv4.gateway",
            "",
        ]));
    } else {
        let address = setup
            .address
            .map(|(ip, p)| format!("{ip}/{p}"))
            .unwrap_or_default();
        let gateway = setup.gateway.map(|g| g.to_string()).unwrap_or_default();
        v.extend(args(&["ipv4.method", "manual", "ipv4.addresses"]));
        v.push(address);
        v.push("ipv4.gateway".into());
        v.push(gateway);
    }
    v.push("ipv4.dns".into());
    v.push(dns);
    v
}

/// `nmcli -g … connection show` of the four fields [`parse_nmcli_show`] reads.
pub fn nmcli_show(connection: &str) -> Vec<String> {
    args(&[
        "nmcli",
        "-g",
        "ipv4.method,ipv4.addresses,ipv4.gateway,ipv4.dns",
        "connection",
        "show",
        connection,
    ])
}

/// Parses what [`nmcli_show`] prints: one line per field (method, addresses,
/// gateway, DNS); lists are comma-separated and only the first address counts.
pub fn parse_nmcli_show(text: &str) -> Option<Ipv4Setup> {
    let mut lines = text.lines().map(str::trim);
    let method = lines.next()?;
    let addresses = lines.next().unwrap_or("");
    let gateway = lines.next().unwrap_or("");
    let dns = lines.next().unwrap_or("");
    let address = addresses
        .split(',')
        .map(str::trim)
        .find(|a| !a.is_empty())
        .and_then(|a| {
            let (ip, p) = a.split_once('/')?;
            Some((ip.parse().ok()?, p.parse().ok()?))
        });
    Some(Ipv4Setup {
        dhcp: method == "auto",
        address,
        gateway: gateway.parse().ok(),
        dns: dns
            .split(',')
            .filter_map(|d| d.trim().parse().ok())
            .collect(),
    })
}

/// `nmcli connection up` for `connection`.
pub fn nmcli_up(connection: &str) -> Vec<String> {
    args(&["nmcli", "connection", "up", connection])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn static_setup() -> Ipv4Setup {
        Ipv4Setup {
            dhcp: false,
            address: Some((ip("192.168.1.20"), 24)),
            gateway: Some(ip("192.168.1.1")),
            dns: vec![ip("192.168.1.1")],
        }
    }

    #[test]
    fn prefix_lengths_of_contiguous_masks_only() {
        assert_eq!(prefix_len(ip("255.255.255.0")), Some(24));
        assert_eq!(prefix_len(ip("255.255.240.0")), Some(20));
        assert_eq!(prefix_len(ip("255.255.255.255")), Some(32));
        assert_eq!(prefix_len(ip("0.0.0.0")), Some(0));
        assert_eq!(prefix_len(ip("255.0.255.0")), None);
    }

    #[test]
    fn an_address_alone_turns_dhcp_off_and_keeps_the_rest() {
        let change = NetworkSettings {
            ip_address: Some(ip("10.1.2.3")),
            ..NetworkSettings::default()
        };
        let next = merge(&static_setup(), &change).unwrap();
        assert_eq!(next.address, Some((ip("10.1.2.3"), 24)));
        assert!(!next.dhcp);
        assert_eq!(next.gateway, Some(ip("192.168.1.1")));
        let from_dhcp = merge(&Ipv4Setup::default(), &change).unwrap();
        assert!(!from_dhcp.dhcp);
        assert_eq!(from_dhcp.address, Some((ip("10.1.2.3"), 24)));
    }

    #[test]
    fn mask_gateway_and_dns_change_one_by_one() {
        let change = NetworkSettings {
            net_mask: Some(ip("255.255.0.0")),
            gateway: Some(ip("0.0.0.0")),
            dns2: Some(ip("9.9.9.9")),
            ..NetworkSettings::default()
        };
        let next = merge(&static_setup(), &change).unwrap();
        assert_eq!(next.address, Some((ip("192.168.1.20"), 16)));
        assert_eq!(next.gateway, None, "0.0.0.0 = no gateway");
        assert_eq!(next.dns, vec![ip("192.168.1.1"), ip("9.9.9.9")]);
    }

    #[test]
    fn dhcp_on_and_off_and_a_static_set_up_without_address_is_refused() {
        let on = NetworkSettings {
            dhcp: Some(true),
            ..NetworkSettings::default()
        };
        assert!(merge(&static_setup(), &on).unwrap().dhcp);
        let off = NetworkSettings {
            dhcp: Some(false),
            ..NetworkSettings::default()
        };
        assert!(merge(&Ipv4Setup::default(), &off).is_err());
        let bad_mask = NetworkSettings {
            net_mask: Some(ip("255.0.255.0")),
            ..NetworkSettings::default()
        };
        assert!(merge(&static_setup(), &bad_mask).is_err());
        let mask_only = NetworkSettings {
            net_mask: Some(ip("255.255.0.0")),
            ..NetworkSettings::default()
        };
        assert!(merge(&Ipv4Setup::default(), &mask_only).is_err(), "DHCP on");
        let dns_only = NetworkSettings {
            dns: Some(ip("1.1.1.1")),
            ..NetworkSettings::default()
        };
        assert_eq!(
            merge(&Ipv4Setup::default(), &dns_only).unwrap().dns,
            vec![ip("1.1.1.1")],
            "DNS works beside DHCP"
        );
    }

    #[test]
    fn the_networkd_file_says_the_set_up_and_reads_back() {
        let text = networkd_file("eth0", &static_setup());
        assert_eq!(
            text,
            "# Written by lintel from its PUSH server's SET OPTIONS.\n[Match]\nName=eth0\n\n\
             [Network]\nDHCP=no\nAddress=192.168.1.20/24\nGateway=192.168.1.1\nDNS=192.168.1.1\n"
        );
        assert_eq!(parse_networkd_file(&text), Some(static_setup()));
        let dhcp = networkd_file("eth0", &Ipv4Setup::default());
        assert!(dhcp.contains("DHCP=ipv4\n") && !dhcp.contains("Address"));
        assert_eq!(parse_networkd_file(&dhcp), Some(Ipv4Setup::default()));
        assert_eq!(
            parse_networkd_file("[Match]\nName=eth0\n"),
            None,
            "not ours"
        );
    }

    #[test]
    fn nmcli_gets_one_argument_per_value() {
        assert_eq!(
            nmcli_modify("lintel", &static_setup()),
            [
                "nmcli",
                "connection",
                "modify",
                "lintel",
                "ipv4.method",
                "manual",
                "ipv4.addresses",
                "192.168.1.20/24",
                "ipv4.gateway",
                "192.168.1.1",
                "ipv4.dns",
                "192.168.1.1"
            ]
        );
        let dhcp = nmcli_modify("lintel; rm -rf /", &Ipv4Setup::default());
        assert_eq!(
            dhcp[3], "lintel; rm -rf /",
            "a name is one argument, never a shell"
        );
        assert_eq!(&dhcp[4..6], ["ipv4.method", "auto"]);
    }

    #[test]
    fn nmcli_show_output_reads_back() {
        let text = "manual\n192.168.1.20/24\n192.168.1.1\n192.168.1.1\n";
        assert_eq!(parse_nmcli_show(text), Some(static_setup()));
        let auto = parse_nmcli_show("auto\n\n\n\n").unwrap();
        assert!(auto.dhcp && auto.address.is_none() && auto.dns.is_empty());
        assert_eq!(parse_nmcli_show(""), None);
    }
}
