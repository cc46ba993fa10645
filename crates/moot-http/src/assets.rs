//! The web UI's files, built into the binary: no CDN, nothing fetched from elsewhere, works with
//! no internet. Plain HTML, CSS and JavaScript modules (no build step): `assets/` is what is
//! served, at `/assets/NAME` (`pages/` holds one module per page); `/` is `index.html`. Every
//! file must be listed in `FILES`.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// (name, content type, bytes)
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/index.html"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../assets/icon.svg"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/style.css"),
    ),
    (
        "print.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/print.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/dom.js"),
    ),
    (
        "editor.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/editor.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/charts.js"),
    ),
    (
        "pages/start.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/start.js"),
    ),
    (
        "pages/dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/dashboard.js"),
    ),
    (
        "pages/assemblies.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/assemblies.js"),
    ),
    (
        "pages/members.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/members.js"),
    ),
    (
        "pages/proposal.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/proposal.js"),
    ),
    (
        "pages/ballot.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/ballot.js"),
    ),
    (
        "pages/results.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/results.js"),
    ),
    (
        "pages/aid.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/aid.js"),
    ),
    (
        "pages/peers.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/peers.js"),
    ),
    (
        "pages/merges.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages/merges.js"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route(
            "/assets/{*name}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
}

#[cfg(test)]
mod tests {
    use super::FILES;
    use std::path::{Path, PathBuf};

    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let name = path.strip_prefix(base).unwrap();
                out.push(name.to_string_lossy().replace('\\', "/"));
            }
        }
    }

    fn listed(name: &str) -> bool {
        FILES.iter().any(|(n, _, _)| *n == name)
    }

    #[test]
    fn every_file_in_assets_is_served() {
        let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut found = Vec::new();
        walk(&base, &base, &mut found);
        for name in &found {
            assert!(listed(name), "assets/{name} is not in FILES");
        }
        assert_eq!(found.len(), FILES.len(), "FILES names a file twice");
    }

    /// Every module a script imports (`from './x.js'`) is one of the files served.
    #[test]
    fn every_import_resolves_to_a_served_file() {
        for (name, kind, bytes) in FILES {
            if !kind.starts_with("text/javascript") {
                continue;
            }
            let text = std::str::from_utf8(bytes).unwrap();
            let dir = Path::new(name).parent().unwrap_or(Path::new(""));
            for line in text.lines().filter(|l| l.contains(" from '")) {
                let target = line.split(" from '").nth(1).unwrap();
                let target = target.split('\'').next().unwrap();
                let mut path = dir.to_path_buf();
                for part in target.split('/') {
                    match part {
                        "." => {}
                        ".." => {
                            path.pop();
                        }
                        part => path.push(part),
                    }
                }
                let resolved = path.to_string_lossy().replace('\\', "/");
                assert!(listed(&resolved), "{name} imports {target}: not served");
            }
        }
    }
}
