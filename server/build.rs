//! Embeds the built site (hydrate JS/WASM, CSS, public files and their precompressed
//! variants) into the binary, so `engage` serves its own assets from any working directory.
//!
//! cargo-leptos builds the site before the server when `precompress` is on and passes its
//! location as LEPTOS_SITE_ROOT. Builds without it (cargo test, clippy) embed nothing.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-env-changed=LEPTOS_SITE_ROOT");
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    if let Ok(root) = env::var("LEPTOS_SITE_ROOT") {
        let (root, watched) = if Path::new(&root).is_absolute() {
            (PathBuf::from(&root), root)
        } else {
            // Watched relative to this package, so a clone sharing the target directory
            // with another clone watches its own site, not the other's.
            (
                manifest
                    .parent()
                    .expect("server/ sits in the workspace")
                    .join(&root),
                format!("../{root}"),
            )
        };
        println!("cargo:rerun-if-changed={watched}");
        collect(&root, &root, &mut files);
    }
    files.sort();
    let mut code = String::from(
        "/// Site files: (path under the site root, contents, ETag).\npub static SITE_FILES: &[(&str, &[u8], &str)] = &[\n",
    );
    for (relative, absolute) in &files {
        let bytes = fs::read(absolute).expect("site file readable");
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        code.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?}), \"\\\"{:016x}\\\"\"),\n",
            absolute.display().to_string(),
            hasher.finish()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("site_files.rs");
    fs::write(out, code).expect("OUT_DIR writable");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push((relative.to_string_lossy().replace('\\', "/"), path));
        }
    }
}
