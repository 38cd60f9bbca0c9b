//! `lintel-mkupgrade`: create the signing key pair of a fleet (`keygen`),
//! build an `emfw.cfg` package (`build`) and print what the server's UPGRADE
//! command needs (size and MD5 checksum).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::package::{self, Compression, FirmwareVersion, PackageSpec};

/// The subcommands of `lintel-mkupgrade`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum MkUpgradeCommand {
    /// Create an RSA key pair: the private key signs packages on the build
    /// machine, the public key goes into `[upgrade] public_key` on devices.
    Keygen(KeygenArgs),
    /// Build (and sign) an upgrade package.
    Build(MakeUpgradeArgs),
}

/// Create a signing key pair.
#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// Where the private key goes (PEM, PKCS#8, owner-only); never overwritten.
    #[arg(long, default_value = "lintel-signing.pem")]
    pub private: PathBuf,
    /// Where the public key goes (PEM, SPKI, owner-only); never overwritten.
    #[arg(long, default_value = "lintel-signing.pub.pem")]
    pub public: PathBuf,
    /// Modulus size in bits.
    #[arg(long, default_value_t = 3072, value_parser = clap::value_parser!(u32).range(2048..=8192))]
    pub bits: u32,
}

/// Build a firmware upgrade package (emfw.cfg).
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("signing").required(true).args(["signing_key", "unsigned"])))]
pub struct MakeUpgradeArgs {
    /// The firmware binary to ship (a release build for the target).
    #[arg(long)]
    pub binary: PathBuf,
    /// Firmware version of that binary, e.g. 1.4.0.
    #[arg(long)]
    pub version: String,
    /// Target triple the binary was built for.
    #[arg(long)]
    pub target: String,
    /// Board configuration files to include (repeatable).
    #[arg(long = "board-config")]
    pub board_configs: Vec<PathBuf>,
    /// PEM RSA private key to sign the manifest with (from `keygen`).
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Build an unsigned package: only devices with `allow_unsigned = true`
    /// install it.
    #[arg(long)]
    pub unsigned: bool,
    /// Write a plain tar instead of tar.gz.
    #[arg(long)]
    pub no_gzip: bool,
    /// Output file; the device accepts only the name emfw.cfg.
    #[arg(long, short, default_value = package::PACKAGE_FILE_NAME)]
    pub out: PathBuf,
}

/// Run `lintel-mkupgrade`.
pub fn mkupgrade_cli(command: MkUpgradeCommand) -> anyhow::Result<()> {
    match command {
        MkUpgradeCommand::Keygen(args) => keygen_cli(&args),
        MkUpgradeCommand::Build(args) => make_upgrade_cli(args),
    }
}

/// Writes `text` to a new file readable by its owner only.
fn write_owner_only(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (an existing key is never replaced)",
                path.display()
            )
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// `lintel-mkupgrade keygen`.
pub fn keygen_cli(args: &KeygenArgs) -> anyhow::Result<()> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    for path in [&args.private, &args.public] {
        if path.exists() {
            anyhow::bail!(
                "{} exists; an existing key is never replaced",
                path.display()
            );
        }
    }
    let bits = usize::try_from(args.bits).context("key size")?;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
        .context("generating the RSA key")?;
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the private key")?;
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding the public key")?;
    write_owner_only(&args.private, &private)?;
    write_owner_only(&args.public, &public)?;
    println!(
        "private key {} (keep it on the build machine)",
        args.private.display()
    );
    println!(
        "public key  {} (set [upgrade] public_key to it on the devices)",
        args.public.display()
    );
    Ok(())
}

/// `lintel-mkupgrade build`.
pub fn make_upgrade_cli(args: MakeUpgradeArgs) -> anyhow::Result<()> {
    let version: FirmwareVersion = args.version.parse()?;
    let key = match &args.signing_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading signing key {}", path.display()))?;
            Some(package::parse_private_key_pem(&pem)?)
        }
        None => None,
    };
    let spec = PackageSpec {
        binary: &args.binary,
        version: &version,
        target: &args.target,
        board_configs: &args.board_configs,
        compression: if args.no_gzip {
            Compression::None
        } else {
            Compression::Gzip
        },
    };
    let built = package::build_package_with(&args.out, &spec, key.as_ref())
        .with_context(|| format!("building {}", args.out.display()))?;
    if args.out.file_name().and_then(|n| n.to_str()) != Some(package::PACKAGE_FILE_NAME) {
        eprintln!(
            "note: devices refuse a package not named {} (Return=-25)",
            package::PACKAGE_FILE_NAME
        );
    }
    println!("package  {}", built.path.display());
    println!("version  {}", built.manifest.version);
    println!("target   {}", built.manifest.target);
    println!("signed   {}", if key.is_some() { "yes" } else { "no" });
    println!("size     {}", built.size);
    println!("checksum {}", built.md5);
    println!(
        "command  UPGRADE type=1,checksum={},size={},url=<URL>/{}",
        built.md5,
        built.size,
        package::PACKAGE_FILE_NAME
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::os::unix::fs::PermissionsExt as _;

    #[derive(Parser)]
    struct Wrapper {
        #[command(subcommand)]
        command: MkUpgradeCommand,
    }

    fn parse(args: &[&str]) -> Result<MkUpgradeCommand, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("x").chain(args.iter().copied())).map(|w| w.command)
    }

    fn policy_for(public_pem: &str) -> package::InstallPolicy {
        package::InstallPolicy {
            target: "armv7-unknown-linux-gnueabihf".into(),
            running_version: "1.0.0".parse().unwrap(),
            allow_downgrade: false,
            public_key: Some(package::parse_public_key_pem(public_pem).unwrap()),
            allow_unsigned: false,
            limits: Default::default(),
        }
    }

    /// Builds a package of a fake binary signed with `key` and checks it
    /// against `public`.
    fn build_and_verify(dir: &Path, key: &Path, public: &Path) {
        let bin = dir.join("lintel");
        std::fs::write(&bin, b"\x7fELF fake binary").unwrap();
        let out = dir.join("emfw.cfg");
        let command = parse(&[
            "build",
            "--binary",
            bin.to_str().unwrap(),
            "--version",
            "2.0.0",
            "--target",
            "armv7-unknown-linux-gnueabihf",
            "--signing-key",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        mkupgrade_cli(command).unwrap();
        let public = std::fs::read_to_string(public).unwrap();
        let staged = package::verify_and_unpack(
            &out,
            &dir.join("staging"),
            &policy_for(&public),
            &crate::upgrade::space::FixedFreeSpace(u64::MAX),
        )
        .unwrap();
        assert!(staged.signature_verified);
        assert_eq!(
            std::fs::read(staged.binary_path()).unwrap(),
            b"\x7fELF fake binary"
        );
    }

    #[test]
    fn builds_a_package_that_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/upgrade/testdata");
        build_and_verify(
            dir.path(),
            &testdata.join("signing_key.pem"),
            &testdata.join("signing_key.pub.pem"),
        );
    }

    #[test]
    fn keygen_makes_an_owner_only_pair_that_signs_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("k.pem");
        let public = dir.path().join("k.pub.pem");
        let keygen = [
            "keygen",
            "--private",
            private.to_str().unwrap(),
            "--public",
            public.to_str().unwrap(),
            "--bits",
            "2048",
        ];
        mkupgrade_cli(parse(&keygen).unwrap()).unwrap();
        for path in [&private, &public] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        build_and_verify(dir.path(), &private, &public);
        let before = std::fs::read(&private).unwrap();
        assert!(mkupgrade_cli(parse(&keygen).unwrap()).is_err());
        assert_eq!(std::fs::read(&private).unwrap(), before, "kept");
        assert!(parse(&["keygen", "--bits", "1024"]).is_err(), "too weak");
    }

    #[test]
    fn a_package_is_signed_unless_unsigned_is_asked_for() {
        let base = [
            "build",
            "--binary",
            "/b",
            "--version",
            "1.0.0",
            "--target",
            "t",
        ];
        assert!(
            parse(&base).is_err(),
            "neither --signing-key nor --unsigned"
        );
        let mut unsigned = base.to_vec();
        unsigned.push("--unsigned");
        assert!(parse(&unsigned).is_ok());
        let mut both = unsigned.clone();
        both.extend(["--signing-key", "/k.pem"]);
        assert!(parse(&both).is_err());
    }

    #[test]
    fn rejects_a_bad_version() {
        let command = parse(&[
            "build",
            "--binary",
            "/nonexistent",
            "--version",
            "one",
            "--target",
            "t",
            "--unsigned",
        ])
        .unwrap();
        assert!(mkupgrade_cli(command).is_err());
    }
}
