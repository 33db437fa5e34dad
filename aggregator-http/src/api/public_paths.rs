//! The paths anyone may read without an API key, and where the two pages served beside
//! the API live.

/// Where the API's description page lives (`/docs` redirects to `/docs/`).
pub(crate) const DOCS: &str = "/docs";

/// Where the operator console lives (`/console` redirects to `/console/`).
pub(crate) const CONSOLE: &str = "/console";

/// Whether anyone may read `path` without a key: health, the API's description and
/// the two pages (each page's own paths included).
pub(crate) fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/health/live" | "/health/ready" | "/openapi.json"
    ) || [DOCS, CONSOLE].iter().any(|page| {
        path == *page
            || path
                .strip_prefix(page)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}
