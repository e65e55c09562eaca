//! What fingerprinting the inputs costs, and when a cached content hash may be reused.

use std::path::{Path, PathBuf};

use sinkmap::manifest::{FingerprintCost, Manifest};

/// Sets a file's modification time to exactly (s, ns), as `touch -d` would.
fn set_mtime(p: &Path, s: i64, ns: i64) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let t = [
        libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        },
        libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        },
    ];
    // SAFETY: a valid NUL-terminated path and two timespecs, as utimensat(2) requires.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), t.as_ptr(), 0) };
    assert_eq!(r, 0);
}

fn fingerprint(inputs: &[(String, PathBuf)], cache: &Path) -> (Manifest, FingerprintCost) {
    let mut m = Manifest::new("test");
    let cost = m.fingerprint_inputs_cached(inputs, Some(cache)).unwrap();
    (m, cost)
}

/// The hash is reused only while device, inode, size, mtime and ctime all hold: an edit of
/// the same size with the old modification time put back is still hashed again (its change
/// time moved), and the manifest then holds the new content's hash.
#[test]
fn a_cached_hash_is_reused_only_for_an_unchanged_file() {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a.tif");
    std::fs::write(&a, "abc").unwrap();
    let cache = t.path().join("fingerprints.json");
    let inputs = vec![("landcover".to_string(), a.clone())];
    // Written just now: hashed, and not cached (a write in the same clock tick would keep
    // the times).
    let (_, c) = fingerprint(&inputs, &cache);
    assert_eq!((c.hashed_files, c.reused_files), (1, 0));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, c) = fingerprint(&inputs, &cache);
    assert_eq!((c.hashed_files, c.reused_files), (1, 0));
    let (m, c) = fingerprint(&inputs, &cache);
    assert_eq!((c.hashed_files, c.reused_files, c.reused_bytes), (0, 1, 3));
    // FIPS 180-2: SHA-256("abc").
    assert_eq!(
        m.inputs[0].sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Same size, old mtime restored: the change time betrays the edit.
    let md = std::fs::metadata(&a).unwrap();
    std::fs::write(&a, "abd").unwrap();
    set_mtime(&a, md.mtime(), md.mtime_nsec());
    assert_eq!(std::fs::metadata(&a).unwrap().mtime_nsec(), md.mtime_nsec());
    let (m, c) = fingerprint(&inputs, &cache);
    assert_eq!((c.hashed_files, c.reused_files), (1, 0));
    assert_ne!(
        m.inputs[0].sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Another file renamed onto the name (new inode): hashed again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fingerprint(&inputs, &cache);
    let b = t.path().join("b.tif");
    std::fs::write(&b, "abd").unwrap();
    std::fs::rename(&b, &a).unwrap();
    let (_, c) = fingerprint(&inputs, &cache);
    assert_eq!(c.hashed_files, 1);
    // An unreadable cache is only a slower run.
    std::fs::write(&cache, "{not json").unwrap();
    let (m, c) = fingerprint(&inputs, &cache);
    assert_eq!(c.hashed_files, 1);
    assert_eq!(m.inputs.len(), 1);
}

/// Times the content hashing of a scene's inputs alone with the program's own code
/// (`SINKMAP_HASH_SCENE=path/to/scene.toml`, e.g. a 20 000 × 20 000 px `sinkmap synth
/// --field-texture` scene): once without a cache, then with the cache a run keeps in its
/// output folder. Prints MB/s; the numbers depend on the machine and its load.
/// `SINKMAP_HASH_FILES=a:b:…` times the same for any files instead (e.g. one big file).
#[test]
#[ignore = "a measurement: needs SINKMAP_HASH_SCENE or SINKMAP_HASH_FILES"]
fn hashing_cost_of_a_scene() {
    let inputs: Vec<(String, PathBuf)> = match std::env::var("SINKMAP_HASH_SCENE") {
        Ok(scene) => {
            let scene = sinkmap::config::Scene::load(Path::new(&scene)).unwrap();
            sinkmap::publish::scene_inputs(&scene, None)
                .unwrap()
                .into_iter()
                .filter(|(_, p)| !sinkmap::embedded::is_embedded(p))
                .collect()
        }
        Err(_) => std::env::var("SINKMAP_HASH_FILES")
            .expect("SINKMAP_HASH_SCENE or SINKMAP_HASH_FILES")
            .split(':')
            .map(|p| ("file".to_string(), PathBuf::from(p)))
            .collect(),
    };
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("fingerprints.json");
    for label in [
        "first run (every file hashed)",
        "rerun (hashes reused from the cache)",
    ] {
        let (_, c) = fingerprint(&inputs, &cache);
        let mb = (c.hashed_bytes + c.reused_bytes) as f64 / 1e6;
        eprintln!(
            "{label}: {} files, {mb:.1} MB, {:.3} s ({:.0} MB/s), hashed {} / reused {}",
            c.hashed_files + c.reused_files,
            c.seconds,
            mb / c.seconds,
            c.hashed_files,
            c.reused_files
        );
    }
}
