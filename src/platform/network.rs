//! The addresses of the network interface that reaches the server, as GET
//! OPTIONS answers them (`IPAddress`, `NetMask`, `GATEIPAddress`, `MAC`), read
//! from Linux without `unsafe` and without running a program:
//!
//! - the local address: a UDP socket connected to the server reports the
//!   address the kernel would send from (`connect` on UDP sends nothing);
//! - the interface and its netmask: the connected-subnet route of
//!   `/proc/net/route` that contains the local address;
//! - the gateway: the interface's route toward the server when it goes
//!   through one, else the interface's default route;
//! - the MAC: `/sys/class/net/<interface>/address`.
//!
//! Whatever cannot be found is left out (logged at debug): a loopback or
//! point-to-point server has no subnet route; the options are IPv4 ones
//! (12.5.2: "the wired network"), so a server reached over IPv6 only gets
//! none.

use super::NetworkIdentity;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};

/// `RTF_UP` and `RTF_GATEWAY` of the kernel's route flags.
const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;

/// One row of `/proc/net/route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub destination: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub flags: u32,
    pub metric: u32,
    pub mask: Ipv4Addr,
}

impl Route {
    fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & u32::from(self.mask) == u32::from(self.destination)
    }

    fn is_up(&self) -> bool {
        self.flags & RTF_UP != 0
    }

    fn via_gateway(&self) -> bool {
        self.flags & RTF_GATEWAY != 0
    }

    fn prefix_len(&self) -> u32 {
        u32::from(self.mask).count_ones()
    }
}

/// An address field of `/proc/net/route`: the kernel prints the address as
/// it lies in memory (network byte order) read as a native integer, so the
/// native bytes of the number are the address's octets.
fn route_address(hex: &str) -> Option<Ipv4Addr> {
    u32::from_str_radix(hex, 16)
        .ok()
        .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
}

/// Parses `/proc/net/route`; the header and any malformed line are skipped.
pub fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 8 {
                return None;
            }
            Some(Route {
                iface: cols[0].to_owned(),
                destination: route_address(cols[1])?,
                gateway: route_address(cols[2])?,
                flags: u32::from_str_radix(cols[3], 16).ok()?,
                metric: cols[6].parse().ok()?,
                mask: route_address(cols[7])?,
            })
        })
        .collect()
}

/// The interface the local address belongs to, its netmask and gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRoute {
    pub iface: String,
    pub netmask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
}

/// Finds the interface of `local` (the address used toward `server`) in the
/// route table; see the module comment.
pub fn interface_toward(
    routes: &[Route],
    local: Ipv4Addr,
    server: Ipv4Addr,
) -> Option<InterfaceRoute> {
    let subnet = routes
        .iter()
        .filter(|r| r.is_up() && !r.via_gateway() && r.prefix_len() > 0 && r.contains(local))
        .max_by_key(|r| (r.prefix_len(), std::cmp::Reverse(r.metric)))?;
    let on_iface = || {
        routes
            .iter()
            .filter(|r| r.is_up() && r.iface == subnet.iface)
    };
    let toward_server = on_iface()
        .filter(|r| r.contains(server))
        .max_by_key(|r| (r.prefix_len(), std::cmp::Reverse(r.metric)));
    let gateway = match toward_server {
        Some(r) if r.via_gateway() => Some(r.gateway),
        _ => on_iface()
            .filter(|r| r.via_gateway() && r.prefix_len() == 0)
            .min_by_key(|r| r.metric)
            .map(|r| r.gateway),
    };
    Some(InterfaceRoute {
        iface: subnet.iface.clone(),
        netmask: subnet.mask,
        gateway,
    })
}

/// A MAC address as `/sys/class/net/<if>/address` writes it: six pairs of
/// hex digits separated by colons (lower case). All-zero (loopback) is none.
pub fn parse_mac(text: &str) -> Option<String> {
    let mac = text.trim().to_ascii_lowercase();
    let parts: Vec<&str> = mac.split(':').collect();
    let well_formed = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    (well_formed && parts.iter().any(|p| *p != "00")).then_some(mac)
}

/// Whether a name from the route table can be used as a /sys path part.
fn safe_iface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'))
}

/// Host and port of a server base URL (`http://host:port`, `https://[v6]`).
fn host_and_port(server_url: &str) -> Option<(String, u16)> {
    let uri: ureq::http::Uri = server_url.trim().parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let default_port = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    Some((host.to_owned(), uri.port_u16().unwrap_or(default_port)))
}

/// The server's IPv4 address and the local address the kernel would use
/// for it. The options are the wired network's IPv4 settings (12.5.2): a
/// server reached over IPv6 only leaves them out.
fn local_address_toward(server_url: &str) -> Result<(Ipv4Addr, Ipv4Addr), &'static str> {
    let (host, port) = host_and_port(server_url).ok_or("no host in the server URL")?;
    let server = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|_| "the server's name does not resolve")?
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .ok_or("the server has no IPv4 address")?;
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|_| "no UDP socket")?;
    socket
        .connect(server)
        .map_err(|_| "no route to the server")?;
    match socket.local_addr().map_err(|_| "no local address")? {
        SocketAddr::V4(local) => Ok((*server.ip(), *local.ip())),
        SocketAddr::V6(_) => Err("no local IPv4 address"),
    }
}

/// The Linux lookup: every part found is filled in, the first failure
/// leaves the rest out, with one debug line.
pub fn lookup(server_url: &str) -> NetworkIdentity {
    let mut id = NetworkIdentity::default();
    if let Err(why) = fill(server_url, &mut id) {
        log::debug!(
            "network interface toward {server_url}: {why}; the options not found are left out"
        );
    }
    id
}

fn fill(server_url: &str, id: &mut NetworkIdentity) -> Result<(), &'static str> {
    let (server, local) = local_address_toward(server_url)?;
    id.ip = Some(local);
    let text =
        std::fs::read_to_string("/proc/net/route").map_err(|_| "/proc/net/route unreadable")?;
    let route = interface_toward(&parse_routes(&text), local, server)
        .ok_or("no subnet route holds the local address")?;
    id.netmask = Some(route.netmask);
    id.gateway = route.gateway;
    if !safe_iface_name(&route.iface) {
        return Err("the interface name is not usable");
    }
    let path = format!("/sys/class/net/{}/address", route.iface);
    let text = std::fs::read_to_string(path).map_err(|_| "its MAC address is unreadable")?;
    id.mac = parse_mac(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A controller on 192.0.2.0/24 behind 192.0.2.1, with a second
    /// interface and a more specific route through another gateway.
    /// (Captured on a little-endian machine, where the kernel prints the
    /// octets reversed.)
    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
eth0\t0000000A\tFE0200C0\t0003\t0\t0\t0\t000000FF\t0\t0\t0
wlan0\t0064A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0164A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
broken line
";

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn routes_parse_from_proc_text() {
        let routes = parse_routes(ROUTES);
        // The short line is dropped, every route row kept.
        assert_eq!(routes.len(), 5);
        assert_eq!(
            routes[0],
            Route {
                iface: "eth0".into(),
                destination: ip("0.0.0.0"),
                gateway: ip("192.0.2.1"),
                flags: 3,
                metric: 100,
                mask: ip("0.0.0.0"),
            }
        );
        assert_eq!(routes[1].destination, ip("192.0.2.0"));
        assert_eq!(routes[1].mask, ip("255.255.255.0"));
        assert_eq!(routes[2].gateway, ip("192.0.2.254"));
        assert_eq!(routes[2].mask, ip("255.0.0.0"));
        assert_eq!(routes[3].iface, "wlan0");
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn the_interface_netmask_and_gateway_toward_the_server() {
        let routes = parse_routes(ROUTES);
        let local = ip("192.0.2.10");
        // A server on the Internet: through the default gateway.
        assert_eq!(
            interface_toward(&routes, local, ip("203.0.113.5")),
            Some(InterfaceRoute {
                iface: "eth0".into(),
                netmask: ip("255.255.255.0"),
                gateway: Some(ip("192.0.2.1")),
            })
        );
        // 10/8 goes through its own gateway.
        let ten = interface_toward(&routes, local, ip("10.1.2.3")).unwrap();
        assert_eq!(ten.gateway, Some(ip("192.0.2.254")));
        // A server on the same subnet: the interface's default gateway.
        let same = interface_toward(&routes, local, ip("192.0.2.20")).unwrap();
        assert_eq!(same.gateway, Some(ip("192.0.2.1")));
        // The wireless interface is found by its own address.
        let wlan = interface_toward(&routes, ip("192.168.100.7"), ip("203.0.113.5")).unwrap();
        assert_eq!(
            (wlan.iface.as_str(), wlan.gateway),
            ("wlan0", Some(ip("192.168.100.1")))
        );
        // Loopback has no subnet route in the main table.
        assert_eq!(
            interface_toward(&routes, ip("127.0.0.1"), ip("127.0.0.1")),
            None
        );
    }

    #[test]
    fn a_more_specific_gateway_route_wins() {
        let routes = vec![
            Route {
                iface: "eth0".into(),
                destination: ip("192.0.2.0"),
                gateway: ip("0.0.0.0"),
                flags: RTF_UP,
                metric: 0,
                mask: ip("255.255.255.0"),
            },
            Route {
                iface: "eth0".into(),
                destination: ip("0.0.0.0"),
                gateway: ip("192.0.2.1"),
                flags: RTF_UP | RTF_GATEWAY,
                metric: 0,
                mask: ip("0.0.0.0"),
            },
            Route {
                iface: "eth0".into(),
                destination: ip("10.0.0.0"),
                gateway: ip("192.0.2.254"),
                flags: RTF_UP | RTF_GATEWAY,
                metric: 0,
                mask: ip("255.0.0.0"),
            },
        ];
        let r = interface_toward(&routes, ip("192.0.2.10"), ip("10.1.2.3")).unwrap();
        assert_eq!(r.gateway, Some(ip("192.0.2.254")));
        // A route that is down does not count.
        let mut down = routes.clone();
        down[0].flags = 0;
        assert_eq!(
            interface_toward(&down, ip("192.0.2.10"), ip("10.1.2.3")),
            None
        );
    }

    #[test]
    fn macs_and_interface_names_are_checked() {
        assert_eq!(
            parse_mac("00:17:61:11:AD:4f\n").as_deref(),
            Some("00:17:61:11:ad:4f")
        );
        assert_eq!(parse_mac("00:00:00:00:00:00\n"), None);
        assert_eq!(parse_mac("not a mac"), None);
        assert_eq!(parse_mac("00:17:61:11:ad"), None);
        assert!(safe_iface_name("eth0") && safe_iface_name("br-lan.5"));
        assert!(!safe_iface_name("..") && !safe_iface_name("a/b") && !safe_iface_name(""));
    }

    #[test]
    fn server_urls_give_host_and_port() {
        assert_eq!(
            host_and_port("http://push.example.com:8088"),
            Some(("push.example.com".into(), 8088))
        );
        assert_eq!(
            host_and_port("https://[2001:db8::1]"),
            Some(("2001:db8::1".into(), 443))
        );
        assert_eq!(
            host_and_port("http://10.0.0.1"),
            Some(("10.0.0.1".into(), 80))
        );
        assert_eq!(host_and_port("not a url"), None);
    }

    #[test]
    fn the_lookup_never_panics_and_finds_the_loopback_address() {
        let id = lookup("http://127.0.0.1:9");
        assert_eq!(id.ip, Some(Ipv4Addr::LOCALHOST));
        let none = lookup("http://");
        assert_eq!(none, NetworkIdentity::default());
    }
}
