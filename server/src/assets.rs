//! Serves the site files embedded at build time (see `build.rs`): the right content type,
//! a precompressed variant when the browser accepts one, and an ETag so browsers revalidate
//! cheaply instead of downloading again.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/site_files.rs"));

fn find(path: &str) -> Option<(&'static [u8], &'static str)> {
    SITE_FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, bytes, etag)| (*bytes, *etag))
}

/// True when this binary carries the browser bundle (built by cargo-leptos).
pub fn embedded() -> bool {
    find(&format!("pkg/{OUTPUT_NAME}.wasm")).is_some()
}

/// Writes every site file except the compressed variants into `dir`, under the names it
/// is served by; reports what it wrote.
pub fn export(dir: &std::path::Path, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    if !embedded() {
        anyhow::bail!(
            "this binary carries no site: build it with `cargo leptos build --release --precompress`"
        );
    }
    let mut written = 0;
    for (path, bytes, _) in SITE_FILES {
        if path.ends_with(".gz") || path.ends_with(".br") {
            continue;
        }
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", target.display()))?;
        written += 1;
    }
    writeln!(
        out,
        "{written} site files written to {} (bundle: pkg/{OUTPUT_NAME}.js, .wasm, .css)",
        dir.display()
    )?;
    Ok(())
}

/// The stylesheet's path, as pages link it.
pub fn stylesheet() -> String {
    format!("/pkg/{OUTPUT_NAME}.css")
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Handler for every static path; answers 404 for anything not embedded.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    // Compressed variants are served through content negotiation, never by their own name.
    if path.is_empty() || path.ends_with(".gz") || path.ends_with(".br") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some((plain, etag)) = find(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let accepted = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let accepts = |coding: &str| {
        accepted
            .split(',')
            .any(|c| c.split(';').next().unwrap_or_default().trim() == coding)
    };
    let (bytes, encoding, etag) = [("br", ".br"), ("gzip", ".gz")]
        .into_iter()
        .filter(|(coding, _)| accepts(coding))
        .find_map(|(coding, suffix)| {
            find(&format!("{path}{suffix}")).map(|(bytes, etag)| (bytes, Some(coding), etag))
        })
        .unwrap_or((plain, None, etag));

    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(bytes))
    };
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    response_headers.insert(header::ETAG, HeaderValue::from_static(etag));
    // The bundle's names carry its content hash, so a copy is good for good; other files
    // keep their names across builds, so browsers keep a copy but check it is current.
    let hashed = OUTPUT_NAME != "engage" && path.starts_with(&format!("pkg/{OUTPUT_NAME}."));
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=0, must-revalidate"
        }),
    );
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(coding) = encoding {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    response
}
