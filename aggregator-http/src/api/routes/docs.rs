//! `/docs`: a page that renders `/openapi.json` (Swagger UI, loaded by the browser).

use axum::response::Html;

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Order Aggregator API</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
  <div id="ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>SwaggerUIBundle({ url: "/openapi.json", dom_id: "#ui" });</script>
</body>
</html>
"##;

/// The interactive API documentation.
#[utoipa::path(get, path = "/docs", tag = "health",
    responses((status = 200, description = "An HTML page", body = String, content_type = "text/html")))]
pub(crate) async fn docs() -> Html<&'static str> {
    Html(PAGE)
}
