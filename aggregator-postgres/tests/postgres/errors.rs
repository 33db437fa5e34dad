use aggregator_core::prelude::*;
use std::time::Duration;

use aggregator_core::domain::OrderId;
use aggregator_core::error::Error;
use aggregator_postgres::{PostgresConfig, PostgresStockStore};

use aggregator_postgres::testing::TestDatabase;

#[tokio::test]
async fn an_exhausted_pool_is_a_retryable_error() {
    let Some(db) = TestDatabase::create_with(1, Duration::from_millis(200)).await else {
        return;
    };
    let held = db
        .store
        .pool()
        .acquire()
        .await
        .expect("the only connection");
    let error = db
        .store
        .order(OrderId::new())
        .await
        .expect_err("no connection free");
    assert!(
        matches!(
            error,
            Error::Unavailable {
                retryable: true,
                ..
            }
        ),
        "got {error:?}"
    );
    drop(held);
    assert!(matches!(
        db.store.order(OrderId::new()).await,
        Err(Error::NotFound { .. })
    ));
    db.finish().await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_error_and_a_bad_url_is_invalid() {
    let mut config = PostgresConfig::new("postgres://postgres:secret@127.0.0.1:1/nowhere");
    config.acquire_timeout = Duration::from_millis(500);
    let error = PostgresStockStore::connect(&config)
        .await
        .expect_err("nothing listens on port 1");
    assert!(error.is_retryable(), "got {error:?}");
    assert!(
        !error.to_string().contains("secret"),
        "no password in errors: {error}"
    );
    let bad = PostgresStockStore::connect(&PostgresConfig::new("not a url"))
        .await
        .expect_err("bad url");
    assert!(matches!(bad, Error::Invalid { .. }), "got {bad:?}");
}

/// `sslmode` in the URL is honoured: `require` gives an encrypted connection (when the
/// server has TLS on, as Debian's PostgreSQL does by default).
#[tokio::test]
async fn sslmode_require_in_the_url_encrypts_the_connection() {
    let Some(url) = aggregator_core::conformance::service_url("DATABASE_URL") else {
        return;
    };
    let plain = PostgresStockStore::connect(&PostgresConfig::new(url.clone()))
        .await
        .expect("connects");
    let server_tls: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(plain.pool())
        .await
        .expect("ssl setting");
    if server_tls != "on" {
        aggregator_core::conformance::skip_unless_required(
            aggregator_core::conformance::REQUIRE_SERVICES,
            "this PostgreSQL has ssl = off (the TLS test needs it on)",
        );
        return;
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    let secured = PostgresStockStore::connect(&PostgresConfig::new(format!(
        "{url}{separator}sslmode=require"
    )))
    .await
    .expect("connects with sslmode=require");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(secured.pool())
            .await
            .expect("pg_stat_ssl");
    assert!(encrypted, "sslmode=require gave a plain connection");
}
