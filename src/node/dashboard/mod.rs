//! The operator's web dashboard, served by every node at `/`: permits by
//! status, one permit with its gas readings, isolation points, closeout,
//! photos and history, devices, and conflicts with buttons that resolve them.
//!
//! Plain HTML, CSS and JavaScript modules, embedded in the binary: no
//! framework, no build step, nothing fetched from elsewhere. The page itself
//! is public (it holds no data); everything it shows comes from the `/v1` API
//! with the token the operator types in (kept in the browser's
//! `localStorage`), and live updates come from `GET /v1/events`. See
//! `docs/dashboard.md`.

mod assets;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::api_error::ApiError;
pub use assets::{Asset, ASSETS};

/// Where the page's files are served (`/dashboard/app.js`, ...).
pub const ASSET_PREFIX: &str = "/dashboard/";

/// What the page may load and run: only this node's own files and API (and
/// images from its blob store); no inline scripts, no other origins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; manifest-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes: `/` (the page) and `/dashboard/{file}` (its files).
/// They need no state and have no fallback, so they merge into the node's app.
pub fn dashboard_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route(&format!("{ASSET_PREFIX}{{file}}"), get(asset))
}

async fn index() -> Response {
    serve(assets::INDEX)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => serve(a),
        None => {
            let quoted: String = file.chars().take(64).collect();
            ApiError::not_found(format!("no dashboard file {quoted:?}")).into_response()
        }
    }
}

/// An embedded file with its content type and the page's security headers.
/// `no-cache`: browsers revalidate, so a new binary's page is picked up at once.
fn serve(a: &Asset) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(a.content_type),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // image URLs carry `?token=`: never send them to anyone in a Referer
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    (StatusCode::OK, headers, a.bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_path(path: &str) -> Response {
        let app: Router = dashboard_router();
        let req = Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("request");
        app.oneshot(req).await.expect("infallible")
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_their_types() {
        let res = get_path("/").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(res.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        for a in ASSETS {
            let res = get_path(&format!("{ASSET_PREFIX}{}", a.name)).await;
            assert_eq!(res.status(), StatusCode::OK, "{}", a.name);
            assert_eq!(res.headers()[header::CONTENT_TYPE], a.content_type);
        }
        let res = get_path("/dashboard/nope.js").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }

    /// The names that follow each `marker` in `text`, up to `end`.
    fn references<'a>(text: &'a str, marker: &str, end: char) -> Vec<&'a str> {
        text.match_indices(marker)
            .map(|(i, _)| {
                let rest = &text[i + marker.len()..];
                &rest[..rest.find(end).unwrap_or(rest.len())]
            })
            .collect()
    }

    /// The buttons of a permit's workflow (`workflow.js`) offer exactly the
    /// moves the model allows.
    #[test]
    fn the_pages_workflow_is_the_models() {
        use crate::model::PermitStatus;
        let js = ASSETS
            .iter()
            .find(|a| a.name == "workflow.js")
            .map(|a| std::str::from_utf8(a.bytes).expect("utf-8 script"))
            .expect("workflow.js is embedded");
        let start = js
            .find("TRANSITIONS = {")
            .expect("workflow.js has TRANSITIONS");
        let table = &js[start..start + js[start..].find("};").expect("the table ends")];
        let mut seen = 0;
        for line in table.lines().skip(1) {
            let Some((from, to)) = line.trim().split_once(':') else {
                continue;
            };
            let from: PermitStatus = from.trim().parse().expect("a status");
            let to: Vec<PermitStatus> = to
                .split('"')
                .skip(1)
                .step_by(2)
                .map(|s| s.parse().expect("a status"))
                .collect();
            let want: Vec<PermitStatus> = PermitStatus::ALL
                .into_iter()
                .filter(|t| from.can_transition_to(*t))
                .collect();
            let mut got = to.clone();
            got.sort_by_key(|s| PermitStatus::ALL.iter().position(|a| a == s));
            assert_eq!(got, want, "moves from {from} in workflow.js");
            seen += 1;
        }
        assert_eq!(seen, PermitStatus::ALL.len(), "every status in workflow.js");
    }

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let embedded = |name: &str| ASSETS.iter().any(|a| a.name == name);
        let html = std::str::from_utf8(assets::INDEX.bytes).expect("utf-8 page");
        let linked = references(html, ASSET_PREFIX, '"');
        assert!(linked.contains(&"app.js") && linked.contains(&"style.css"));
        for name in linked {
            assert!(
                embedded(name),
                "index.html loads {name}, which is not embedded"
            );
        }
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let js = std::str::from_utf8(a.bytes).expect("utf-8 script");
            for name in references(js, "from \"./", '"') {
                assert!(
                    embedded(name),
                    "{} imports {name}, which is not embedded",
                    a.name
                );
            }
        }
    }
}
