//! Embeds the built site (hydrate JS/WASM, CSS, public files and their precompressed
//! variants) into the binary, so `engage` serves its own assets from any working directory.
//!
//! The bundle's three files (`pkg/engage.js`, `.wasm`, `.css`) are embedded under a name
//! carrying a hash of their contents, `pkg/engage-{hash}.*`, and `OUTPUT_NAME` is that
//! name: a page always asks for the bundle its own binary was built with, so during a
//! canary deployment old and new pages each load their own bundle, and browsers and the
//! CDN may keep a bundle for good.
//!
//! cargo-leptos builds the site before the server when `precompress` is on and passes its
//! location as LEPTOS_SITE_ROOT (set it by hand for `cargo lambda build`). Builds without
//! it (cargo test, clippy) embed nothing.

use sha2::{Digest, Sha256};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::{env, fs};

/// The bundle's files, which carry the content hash in their served names.
const BUNDLE: [&str; 3] = ["pkg/engage.js", "pkg/engage.wasm", "pkg/engage.css"];

/// `engage-{first 16 hex digits of the SHA-256 of the bundle}`, or `engage` without a site.
fn output_name(files: &[(String, PathBuf)]) -> String {
    let mut hasher = Sha256::new();
    for name in BUNDLE {
        let Some((_, path)) = files.iter().find(|(relative, _)| relative == name) else {
            return "engage".to_owned();
        };
        hasher.update(fs::read(path).expect("bundle file readable"));
    }
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("engage-{hex}")
}

/// The name a site file is served under: the bundle's files (and their compressed
/// variants) under the hashed name.
fn served_name(relative: &str, output_name: &str) -> String {
    BUNDLE
        .iter()
        .find_map(|name| {
            let rest = relative.strip_prefix(name)?;
            let ext = name.rsplit('.').next()?;
            Some(format!("pkg/{output_name}.{ext}{rest}"))
        })
        .unwrap_or_else(|| relative.to_owned())
}

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
    let output_name = output_name(&files);
    let mut code = format!(
        "/// The bundle's file name without extension, as pages ask for it.\npub const OUTPUT_NAME: &str = {output_name:?};\n\n/// Site files: (path served under the site root, contents, ETag).\npub static SITE_FILES: &[(&str, &[u8], &str)] = &[\n",
    );
    for (relative, absolute) in &files {
        let relative = served_name(relative, &output_name);
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
