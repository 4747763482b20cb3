//! The web UI: the Vite build of `dashboard/`, embedded into the binary
//! (read from disk in debug builds), served at `/` with a strict
//! Content-Security-Policy. Paths that are not files are the single-page
//! app's own routes and get its `index.html`.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "../dashboard/dist"]
#[allow_missing = true]
struct Build;

/// Everything from this origin only; no inline script or style, no
/// plugins, no framing, no `<base>`, forms only to this origin.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path == "api" || path.starts_with("api/") {
        return ApiError::not_found(format!("no route `{}`", uri.path())).into_response();
    }
    let (file, name) = match Build::get(path).filter(|_| !path.is_empty()) {
        Some(file) => (file, path),
        None => match Build::get("index.html") {
            Some(index) => (index, "index.html"),
            None => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The dashboard was not built into this binary: `make run` builds it (npm run build --prefix dashboard).",
                )
                    .into_response();
            }
        },
    };
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    let mime =
        HeaderValue::from_str(file.metadata.mimetype()).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, mime);
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Vite names assets by their content: they never change.
    let cache = if name.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
