//! `lintel-mkupgrade`: build an `emfw.cfg` package and print what the server's
//! UPGRADE command needs (size and MD5 checksum).

use std::path::PathBuf;

use anyhow::Context as _;

use super::package::{self, Compression, FirmwareVersion, PackageSpec};

/// Build a firmware upgrade package (emfw.cfg).
#[derive(Debug, Clone, clap::Args)]
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
    /// PEM RSA private key to sign the manifest with.
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Write a plain tar instead of tar.gz.
    #[arg(long)]
    pub no_gzip: bool,
    /// Output file; the device accepts only the name emfw.cfg.
    #[arg(long, short, default_value = package::PACKAGE_FILE_NAME)]
    pub out: PathBuf,
}

/// Run `lintel-mkupgrade`.
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

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: MakeUpgradeArgs,
    }

    #[test]
    fn builds_a_package_that_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("lintel");
        std::fs::write(&bin, b"\x7fELF fake binary").unwrap();
        let out = dir.path().join("emfw.cfg");
        let key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/upgrade/testdata/signing_key.pem"
        );
        let w = Wrapper::try_parse_from([
            "x",
            "--binary",
            bin.to_str().unwrap(),
            "--version",
            "2.0.0",
            "--target",
            "armv7-unknown-linux-gnueabihf",
            "--signing-key",
            key,
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        make_upgrade_cli(w.args).unwrap();
        let public = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/upgrade/testdata/signing_key.pub.pem"
        ))
        .unwrap();
        let policy = package::InstallPolicy {
            target: "armv7-unknown-linux-gnueabihf".into(),
            running_version: "1.0.0".parse().unwrap(),
            allow_downgrade: false,
            public_key: Some(package::parse_public_key_pem(&public).unwrap()),
            limits: Default::default(),
        };
        let staged = package::verify_and_unpack(
            &out,
            &dir.path().join("staging"),
            &policy,
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
    fn rejects_a_bad_version() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wrapper::try_parse_from([
            "x",
            "--binary",
            "/nonexistent",
            "--version",
            "one",
            "--target",
            "t",
        ])
        .unwrap();
        assert!(make_upgrade_cli(w.args).is_err());
        drop(dir);
    }
}
