//! The `aggregator-migrate` binary: applies migrations, and refuses bad input clearly.

use std::process::Command;

use aggregator_core::conformance::service_url;
use sqlx::{Connection, PgConnection};

fn migrate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aggregator-migrate"))
}

#[test]
fn without_a_url_it_says_how_to_give_one() {
    let output = migrate().env_remove("DATABASE_URL").output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn help_explains_the_usage_and_version_answers() {
    let output = migrate().arg("--help").output().expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("Usage: aggregator-migrate"), "{help}");
    assert!(help.contains("DATABASE_URL"), "{help}");
    let output = migrate().arg("--version").output().expect("runs");
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
    let output = migrate().arg("--bogus").output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "errors go to stderr");
}

#[test]
fn an_unreachable_server_fails_without_printing_the_password() {
    let output = migrate()
        .arg("postgres://app:topsecret@127.0.0.1:1/nowhere")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!stderr.contains("topsecret"), "{stderr}");
}

#[tokio::test]
async fn it_applies_the_migrations_to_a_fresh_database() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let name = format!("agg_test_{}", uuid::Uuid::now_v7().simple());
    let admin: sqlx::postgres::PgConnectOptions = url.parse().expect("postgres URL");
    let mut conn = PgConnection::connect_with(&admin).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("create");
    let target = aggregator_postgres::PostgresConfig::new(url)
        .with_database(&name)
        .url;
    let output = migrate().arg(target.expose()).output().expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    let again = migrate().arg(target.expose()).output().expect("runs");
    assert!(again.status.success(), "running twice is fine");
    let mut db = PgConnection::connect_with(&admin.clone().database(&name))
        .await
        .expect("connect");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'vendor_stock'",
    )
    .fetch_one(&mut db)
    .await
    .expect("count");
    assert_eq!(tables, 1);
    db.close().await.expect("close");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .expect("drop");
}
