//! Reading the catalog: products with aggregated availability, and vendors.

use aggregator_core::domain::ProductId;
use axum::Json;
use axum::extract::{Path, State};

use crate::api::extract::ListQuery;
use crate::api::problem::{ApiError, Problem};
use crate::api::state::ApiState;
use crate::api::views::{
    Answer, Pagination, ProductData, ProductPage, ProductView, VendorData, VendorView,
};

/// Products by id with their aggregated availability.
#[utoipa::path(get, path = "/api/products", tag = "catalog",
    params(
        ("page" = Option<u64>, Query, minimum = 1, maximum = 1000000, description = "From 1"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
    ),
    responses(
        (status = 200, description = "A page of products", body = Answer<ProductPage>),
        (status = 400, description = "Bad page or limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_products(
    State(state): State<ApiState>,
    query: ListQuery,
) -> Result<Json<Answer<ProductPage>>, ApiError> {
    let page = state
        .inner
        .listing
        .products(query.offset(), query.limit)
        .await?;
    Ok(Json(Answer::new(ProductPage {
        products: page.items.iter().map(ProductView::from).collect(),
        pagination: Pagination::new(query.page, query.limit, page.total),
    })))
}

/// One product: units that can be sold now, and every vendor's figures with freshness.
#[utoipa::path(get, path = "/api/products/{id}", tag = "catalog",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "A canonical product id such as LAPTOP-001")),
    responses(
        (status = 200, description = "The product", body = Answer<ProductData>),
        (status = 400, description = "Not a product id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No vendor lists it", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_product(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Answer<ProductData>>, ApiError> {
    let product = ProductId::new(&id)?;
    let availability = state.inner.catalog.availability(&product).await?;
    Ok(Json(Answer::new(ProductData {
        product: ProductView::from(&availability),
    })))
}

/// Every vendor with its health and last good sync.
#[utoipa::path(get, path = "/api/vendors", tag = "catalog",
    responses((status = 200, description = "The vendors", body = Answer<VendorData>)))]
pub(crate) async fn list_vendors(
    State(state): State<ApiState>,
) -> Result<Json<Answer<VendorData>>, ApiError> {
    let mut vendors = state.inner.catalog.vendors().await?;
    vendors.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
    Ok(Json(Answer::new(VendorData {
        vendors: vendors.iter().map(VendorView::from).collect(),
    })))
}
