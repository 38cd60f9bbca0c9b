use super::*;
use crate::upgrade::space::FixedFreeSpace;
use md5::Md5;
use rsa::RsaPrivateKey;

const TARGET: &str = "armv7-unknown-linux-gnueabihf";
const BINARY: &[u8] = b"\x7fELF pretend firmware binary";
const BOARD: &[u8] = b"[board]\nname = \"pi\"\n";

fn testdata(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/upgrade/testdata")
        .join(name);
    fs::read_to_string(path).unwrap()
}

fn signing_key() -> RsaPrivateKey {
    parse_private_key_pem(&testdata("signing_key.pem")).unwrap()
}

fn public_key() -> RsaPublicKey {
    parse_public_key_pem(&testdata("signing_key.pub.pem")).unwrap()
}

fn other_key() -> RsaPrivateKey {
    parse_private_key_pem(&testdata("other_key.pem")).unwrap()
}

/// The policy of the tests about the package's structure: they opt in to
/// unsigned packages explicitly; the signature tests set a key and clear it.
fn policy() -> InstallPolicy {
    InstallPolicy {
        target: TARGET.to_owned(),
        running_version: "1.0.0".parse().unwrap(),
        allow_downgrade: false,
        public_key: None,
        allow_unsigned: true,
        limits: UnpackLimits::default(),
    }
}

/// The device's default: a key is required.
fn keyed_policy() -> InstallPolicy {
    InstallPolicy {
        public_key: Some(public_key()),
        allow_unsigned: false,
        ..policy()
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn manifest_text(version: &str, target: &str, files: &[(&str, &[u8])]) -> String {
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        version: version.to_owned(),
        target: target.to_owned(),
        binary: BINARY_NAME.to_owned(),
        files: files
            .iter()
            .map(|(path, data)| ManifestFile {
                path: (*path).to_owned(),
                size: u64::try_from(data.len()).unwrap(),
                sha256: sha256_hex(data),
            })
            .collect(),
    };
    manifest.to_toml().unwrap()
}

/// One tar entry, written with raw header fields so that hostile names survive
/// (tar::Builder's path setters refuse `..` and would normalise others).
struct Raw {
    path: Vec<u8>,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Vec<u8>,
}

fn file(path: &str, data: &[u8]) -> Raw {
    Raw {
        path: path.as_bytes().to_vec(),
        kind: tar::EntryType::Regular,
        data: data.to_vec(),
        link: Vec::new(),
    }
}

fn special(path: &str, kind: tar::EntryType, link: &str) -> Raw {
    Raw {
        path: path.as_bytes().to_vec(),
        kind,
        data: Vec::new(),
        link: link.as_bytes().to_vec(),
    }
}

fn write_raw_tar(out: &Path, entries: &[Raw], gzip: bool) {
    let mut bytes = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut bytes);
        for e in entries {
            let mut header = tar::Header::new_old();
            {
                let old = header.as_old_mut();
                old.name[..e.path.len()].copy_from_slice(&e.path);
                old.linkname[..e.link.len()].copy_from_slice(&e.link);
            }
            header.set_entry_type(e.kind);
            header.set_mode(0o644);
            header.set_size(u64::try_from(e.data.len()).unwrap());
            header.set_cksum();
            builder.append(&header, e.data.as_slice()).unwrap();
        }
        builder.finish().unwrap();
    }
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        bytes = enc.finish().unwrap();
    }
    fs::write(out, bytes).unwrap();
}

/// A well-formed package (manifest, optional signature, binary, board config)
/// followed by `extra` entries.
fn package_with(
    dir: &Path,
    version: &str,
    target: &str,
    key: Option<&RsaPrivateKey>,
    extra: Vec<Raw>,
) -> PathBuf {
    let manifest = manifest_text(
        version,
        target,
        &[(BINARY_NAME, BINARY), ("board-configs/pi.toml", BOARD)],
    );
    let mut entries = vec![file(MANIFEST_PATH, manifest.as_bytes())];
    if let Some(key) = key {
        entries.push(file(
            SIGNATURE_PATH,
            &sign_manifest(key, manifest.as_bytes()).unwrap(),
        ));
    }
    entries.push(file(BINARY_NAME, BINARY));
    entries.push(file("board-configs/pi.toml", BOARD));
    entries.extend(extra);
    let out = dir.join(PACKAGE_FILE_NAME);
    write_raw_tar(&out, &entries, true);
    out
}

fn unpack(
    package: &Path,
    dir: &Path,
    policy: &InstallPolicy,
) -> Result<VerifiedPackage, PackageError> {
    verify_and_unpack(
        package,
        &dir.join("staging"),
        policy,
        &FixedFreeSpace(u64::MAX),
    )
}

/// Unpack must fail with `code`, leave no staging directory and nothing outside.
fn assert_refused(dir: &Path, package: &Path, policy: &InstallPolicy, code: i32) -> PackageError {
    let err = unpack(package, dir, policy).unwrap_err();
    assert_eq!(err.return_code(), code, "{err}");
    assert!(
        !dir.join("staging").exists(),
        "staging must be removed after {err}"
    );
    assert!(!dir.join("x").exists() && !dir.join("evil").exists());
    err
}

#[test]
fn built_package_round_trips_gzip_and_plain() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("lintel-build");
    fs::write(&bin, BINARY).unwrap();
    let board = dir.path().join("pi.toml");
    fs::write(&board, BOARD).unwrap();
    let version: FirmwareVersion = "1.2.0".parse().unwrap();
    for compression in [Compression::Gzip, Compression::None] {
        let out = dir.path().join(PACKAGE_FILE_NAME);
        let spec = PackageSpec {
            binary: &bin,
            version: &version,
            target: TARGET,
            board_configs: std::slice::from_ref(&board),
            compression,
        };
        let built = build_package_with(&out, &spec, None).unwrap();
        let on_disk = fs::read(&out).unwrap();
        assert_eq!(built.size, u64::try_from(on_disk.len()).unwrap());
        assert_eq!(built.md5, hex(&Md5::digest(&on_disk)));
        assert_eq!(
            on_disk.starts_with(&[0x1f, 0x8b]),
            compression == Compression::Gzip
        );

        let staged = unpack(&out, dir.path(), &policy()).unwrap();
        assert_eq!(staged.version, version);
        assert!(!staged.signature_verified);
        assert_eq!(fs::read(staged.binary_path()).unwrap(), BINARY);
        let mode = fs::metadata(staged.binary_path()).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o755
        );
        assert_eq!(
            fs::read(staged.staging.join("board-configs/pi.toml")).unwrap(),
            BOARD
        );
        let manifest_copy = fs::read(staged.staging.join(MANIFEST_PATH)).unwrap();
        assert_eq!(Manifest::parse(&manifest_copy).unwrap(), built.manifest);
    }
}

#[test]
fn builds_are_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    fs::write(&bin, BINARY).unwrap();
    let v: FirmwareVersion = "3.0.0".parse().unwrap();
    let a = build_package(&dir.path().join("a.cfg"), &bin, &v, TARGET, &[], None).unwrap();
    let b = build_package(&dir.path().join("b.cfg"), &bin, &v, TARGET, &[], None).unwrap();
    assert_eq!(a.md5, b.md5);
}

#[test]
fn signed_package_verifies_with_the_configured_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = signing_key();
    let pkg = package_with(dir.path(), "1.1.0", TARGET, Some(&key), vec![]);
    let p = keyed_policy();
    let staged = unpack(&pkg, dir.path(), &p).unwrap();
    assert!(staged.signature_verified);
}

#[test]
fn signature_by_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(dir.path(), "1.1.0", TARGET, Some(&other_key()), vec![]);
    let p = keyed_policy();
    let err = assert_refused(dir.path(), &pkg, &p, -24);
    assert!(matches!(err, PackageError::Signature(_)));
}

#[test]
fn unsigned_package_is_refused_when_a_key_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(dir.path(), "1.1.0", TARGET, None, vec![]);
    let p = keyed_policy();
    let err = assert_refused(dir.path(), &pkg, &p, -24);
    assert!(matches!(err, PackageError::Signature(_)));
    // Without a key, and without the opt-in, it is refused as well.
    let bare = InstallPolicy {
        public_key: None,
        ..keyed_policy()
    };
    assert!(bare.refuses_every_package().is_some());
    let err = assert_refused(dir.path(), &pkg, &bare, -24);
    assert!(matches!(err, PackageError::Signature(_)));
    // Only the explicit opt-in accepts it.
    assert!(unpack(&pkg, dir.path(), &policy()).is_ok());
}

#[test]
fn with_the_opt_in_a_signature_present_is_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(dir.path(), "1.1.0", TARGET, Some(&other_key()), vec![]);
    let p = InstallPolicy {
        allow_unsigned: true,
        ..keyed_policy()
    };
    let err = assert_refused(dir.path(), &pkg, &p, -24);
    assert!(matches!(err, PackageError::Signature(_)));
}

#[test]
fn tampered_manifest_breaks_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let key = signing_key();
    let good = manifest_text("1.1.0", TARGET, &[(BINARY_NAME, BINARY)]);
    let sig = sign_manifest(&key, good.as_bytes()).unwrap();
    let evil_binary = b"evil";
    let tampered = manifest_text("1.1.0", TARGET, &[(BINARY_NAME, evil_binary)]);
    let pkg = dir.path().join(PACKAGE_FILE_NAME);
    write_raw_tar(
        &pkg,
        &[
            file(MANIFEST_PATH, tampered.as_bytes()),
            file(SIGNATURE_PATH, &sig),
            file(BINARY_NAME, evil_binary),
        ],
        false,
    );
    let p = keyed_policy();
    assert_refused(dir.path(), &pkg, &p, -24);
}

#[test]
fn wrong_target_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(
        dir.path(),
        "1.1.0",
        "aarch64-unknown-linux-gnu",
        None,
        vec![],
    );
    let err = assert_refused(dir.path(), &pkg, &policy(), -22);
    assert!(err.to_string().contains("aarch64"));
}

#[test]
fn older_version_is_refused_unless_downgrade_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(dir.path(), "0.9.5", TARGET, None, vec![]);
    assert_refused(dir.path(), &pkg, &policy(), -23);
    let mut p = policy();
    p.allow_downgrade = true;
    assert!(unpack(&pkg, dir.path(), &p).is_ok());
    // The same version may be installed again (re-flash).
    let same = package_with(dir.path(), "1.0.0", TARGET, None, vec![]);
    assert!(unpack(&same, dir.path(), &policy()).is_ok());
}

#[test]
fn insufficient_space_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(dir.path(), "1.1.0", TARGET, None, vec![]);
    let err = verify_and_unpack(
        &pkg,
        &dir.path().join("staging"),
        &policy(),
        &FixedFreeSpace(10),
    )
    .unwrap_err();
    assert_eq!(err.return_code(), -18);
    assert!(!dir.path().join("staging").exists());
}

#[test]
fn absolute_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil");
    let pkg = package_with(
        dir.path(),
        "1.1.0",
        TARGET,
        None,
        vec![file(evil.to_str().unwrap(), b"pwn")],
    );
    let err = assert_refused(dir.path(), &pkg, &policy(), -24);
    assert!(err.to_string().contains("absolute"), "{err}");
}

#[test]
fn parent_dir_paths_are_refused() {
    for path in ["../x", "board-configs/../../x", "./../x"] {
        let dir = tempfile::tempdir().unwrap();
        let staging_parent = dir.path();
        let pkg = package_with(
            staging_parent,
            "1.1.0",
            TARGET,
            None,
            vec![file(path, b"pwn")],
        );
        let err = assert_refused(staging_parent, &pkg, &policy(), -24);
        assert!(err.to_string().contains(".."), "{path}: {err}");
    }
}

#[test]
fn symlink_out_of_the_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(
        dir.path(),
        "1.1.0",
        TARGET,
        None,
        vec![special(
            "board-configs/etc",
            tar::EntryType::Symlink,
            "/etc",
        )],
    );
    let err = assert_refused(dir.path(), &pkg, &policy(), -24);
    assert!(err.to_string().contains("links"), "{err}");
}

#[test]
fn symlink_then_write_through_it_never_happens() {
    // The classic two-step attack: a link named like a directory, then a file
    // "inside" it. The link is refused before the file is reached.
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let manifest = manifest_text("1.1.0", TARGET, &[(BINARY_NAME, BINARY), ("d/f", b"pwn")]);
    let pkg = dir.path().join(PACKAGE_FILE_NAME);
    write_raw_tar(
        &pkg,
        &[
            file(MANIFEST_PATH, manifest.as_bytes()),
            special("d", tar::EntryType::Symlink, outside.to_str().unwrap()),
            file("d/f", b"pwn"),
            file(BINARY_NAME, BINARY),
        ],
        false,
    );
    assert_refused(dir.path(), &pkg, &policy(), -24);
    assert!(!outside.join("f").exists());
}

#[test]
fn hardlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(
        dir.path(),
        "1.1.0",
        TARGET,
        None,
        vec![special("x", tar::EntryType::Link, "/etc/passwd")],
    );
    assert_refused(dir.path(), &pkg, &policy(), -24);
}

#[test]
fn device_nodes_and_fifos_are_refused() {
    for kind in [
        tar::EntryType::Char,
        tar::EntryType::Block,
        tar::EntryType::Fifo,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pkg = package_with(
            dir.path(),
            "1.1.0",
            TARGET,
            None,
            vec![special("dev", kind, "")],
        );
        let err = assert_refused(dir.path(), &pkg, &policy(), -24);
        assert!(err.to_string().contains("not allowed"), "{kind:?}: {err}");
    }
}

#[test]
fn oversize_entry_is_refused_before_unpacking() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(dir.path(), "1.1.0", TARGET, None, vec![]);
    let mut p = policy();
    p.limits.max_entry_bytes = 8;
    let err = assert_refused(dir.path(), &pkg, &p, -24);
    assert!(err.to_string().contains("more than the limit"), "{err}");
}

#[test]
fn entry_larger_than_its_manifest_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_text("1.1.0", TARGET, &[(BINARY_NAME, BINARY)]);
    let pkg = dir.path().join(PACKAGE_FILE_NAME);
    let mut big = BINARY.to_vec();
    big.extend_from_slice(&[0u8; 4096]);
    write_raw_tar(
        &pkg,
        &[
            file(MANIFEST_PATH, manifest.as_bytes()),
            file(BINARY_NAME, &big),
        ],
        false,
    );
    let err = assert_refused(dir.path(), &pkg, &policy(), -24);
    assert!(err.to_string().contains("the manifest says"), "{err}");
}

#[test]
fn too_many_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = (0..20)
        .map(|i| special(&format!("d{i}/"), tar::EntryType::Directory, ""))
        .collect();
    let pkg = package_with(dir.path(), "1.1.0", TARGET, None, dirs);
    let mut p = policy();
    p.limits.max_entries = 10;
    let err = assert_refused(dir.path(), &pkg, &p, -24);
    assert!(err.to_string().contains("entries"), "{err}");
}

#[test]
fn wrong_file_hash_is_a_checksum_error() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_text("1.1.0", TARGET, &[(BINARY_NAME, BINARY)]);
    let mut corrupted = BINARY.to_vec();
    corrupted[0] ^= 0xff; // same size, different contents
    let pkg = dir.path().join(PACKAGE_FILE_NAME);
    write_raw_tar(
        &pkg,
        &[
            file(MANIFEST_PATH, manifest.as_bytes()),
            file(BINARY_NAME, &corrupted),
        ],
        true,
    );
    let err = assert_refused(dir.path(), &pkg, &policy(), -19);
    assert!(matches!(err, PackageError::FileChecksum { .. }));
}

#[test]
fn unlisted_missing_and_duplicate_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package_with(
        dir.path(),
        "1.1.0",
        TARGET,
        None,
        vec![file("extra.txt", b"?")],
    );
    assert_refused(dir.path(), &pkg, &policy(), -24);

    let manifest = manifest_text("1.1.0", TARGET, &[(BINARY_NAME, BINARY), ("b.toml", BOARD)]);
    write_raw_tar(
        &pkg,
        &[
            file(MANIFEST_PATH, manifest.as_bytes()),
            file(BINARY_NAME, BINARY),
        ],
        false,
    );
    let err = assert_refused(dir.path(), &pkg, &policy(), -24);
    assert!(matches!(err, PackageError::MissingFile { .. }), "{err}");

    let pkg = package_with(
        dir.path(),
        "1.1.0",
        TARGET,
        None,
        vec![file(BINARY_NAME, BINARY)],
    );
    let err = assert_refused(dir.path(), &pkg, &policy(), -24);
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn manifest_must_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_text("1.1.0", TARGET, &[(BINARY_NAME, BINARY)]);
    let pkg = dir.path().join(PACKAGE_FILE_NAME);
    write_raw_tar(
        &pkg,
        &[
            file(BINARY_NAME, BINARY),
            file(MANIFEST_PATH, manifest.as_bytes()),
        ],
        false,
    );
    assert_refused(dir.path(), &pkg, &policy(), -24);
}

#[test]
fn garbage_and_truncated_packages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join(PACKAGE_FILE_NAME);
    fs::write(&pkg, b"this is not a tar file at all, just some text").unwrap();
    assert_refused(dir.path(), &pkg, &policy(), -24);

    let good = package_with(dir.path(), "1.1.0", TARGET, None, vec![]);
    let bytes = fs::read(&good).unwrap();
    fs::write(&pkg, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(dir.path(), &pkg, &policy(), -24);

    fs::write(&pkg, b"").unwrap();
    assert_refused(dir.path(), &pkg, &policy(), -24);
}

#[test]
fn missing_package_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(dir.path(), &dir.path().join("nope"), &policy(), -16);
}

#[test]
fn existing_staging_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    fs::create_dir_all(staging.join("old")).unwrap();
    fs::write(staging.join(BINARY_NAME), b"stale").unwrap();
    let pkg = package_with(dir.path(), "1.1.0", TARGET, None, vec![]);
    let staged = unpack(&pkg, dir.path(), &policy()).unwrap();
    assert_eq!(fs::read(staged.binary_path()).unwrap(), BINARY);
    assert!(!staging.join("old").exists());
}

#[test]
fn manifest_validation_names_the_problem() {
    let base = Manifest::parse(manifest_text("1.0.0", TARGET, &[(BINARY_NAME, BINARY)]).as_bytes())
        .unwrap();
    let check = |edit: &dyn Fn(&mut Manifest), needle: &str| {
        let mut m = base.clone();
        edit(&mut m);
        let err = m.validate().unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        assert_eq!(err.return_code(), -24);
    };
    check(&|m| m.format = 2, "format");
    check(&|m| m.version = "latest".into(), "version");
    check(&|m| m.binary = "other".into(), "binary");
    check(&|m| m.files[0].sha256 = "ABC".into(), "sha256");
    check(&|m| m.files.push(m.files[0].clone()), "twice");
    check(
        &|m| {
            let mut f = m.files[0].clone();
            f.path = MANIFEST_PATH.into();
            m.files.push(f);
        },
        "reserved",
    );
    check(
        &|m| {
            let mut f = m.files[0].clone();
            f.path = "/etc/passwd".into();
            m.files.push(f);
        },
        "absolute",
    );
    assert!(Manifest::parse(b"format = 1\nunknown = true\n").is_err());
}

#[test]
fn versions_compare_semver_style() {
    let v = |s: &str| s.parse::<FirmwareVersion>().unwrap();
    assert!(v("1.10.0") > v("1.9.9"));
    assert!(v("2") > v("1.99"));
    assert_eq!(v("1.2"), v("1.2.0"));
    assert!(v("1.3.0-rc1") < v("1.3.0"));
    assert!(v("1.3.0-rc.2") < v("1.3.0-rc.10"));
    assert!(v("1.3.0-alpha") < v("1.3.0-beta"));
    assert!(v("1.3.0-1") < v("1.3.0-alpha"));
    assert_eq!(v("v1.4.0+build7"), v("1.4.0"));
    assert_eq!(v("1.4.0").to_string(), "1.4.0");
    for bad in [
        "",
        "a.b",
        "1..2",
        "1.2-",
        "1.2-rc!",
        "-1",
        "1.2.3.4.5.6.7.8.9",
    ] {
        assert!(bad.parse::<FirmwareVersion>().is_err(), "{bad:?}");
    }
}

#[test]
fn safe_relative_path_cases() {
    assert_eq!(safe_relative_path(b"a/b").unwrap(), Path::new("a/b"));
    assert_eq!(safe_relative_path(b"./a//b/").unwrap(), Path::new("a/b"));
    for bad in [&b"/a"[..], b"..", b"a/../b", b"", b".", b"a\\b", b"\xff"] {
        assert!(safe_relative_path(bad).is_err(), "{bad:?}");
    }
}
