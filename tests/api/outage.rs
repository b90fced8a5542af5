//! The database goes away under a running labcat and comes back. This test owns a cluster
//! of its own: stopping the shared one would fail every other test running beside it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use labcat::auth::issue_key;
use labcat::config::Settings;
use labcat::db;
use labcat::domain::Scope;
use labcat::embedded_postgres::{ClusterOptions, EmbeddedPostgres};
use labcat::startup::Application;
use reqwest::StatusCode;
use serde_json::json;

async fn start_cluster(root: PathBuf) -> EmbeddedPostgres {
    tokio::task::spawn_blocking(move || {
        EmbeddedPostgres::start(&ClusterOptions {
            root,
            ephemeral: true,
        })
    })
    .await
    .unwrap()
    .expect("a private PostgreSQL cluster starts")
}

#[tokio::test]
async fn a_stopped_database_gives_fast_503s_and_a_restarted_one_is_picked_up() {
    let root = tempfile::Builder::new()
        .prefix("labcat-test-outage-")
        .tempdir()
        .unwrap();
    let cluster = start_cluster(root.path().to_owned()).await;
    db::create_database_if_missing(cluster.connect_options("postgres"), "labcat")
        .await
        .unwrap();
    let mut settings = Settings::defaults();
    settings.server.addr = "127.0.0.1:0".into();
    settings.server.workers = 1;
    settings.database.acquire_timeout_ms = 1000;
    let pool = db::pool(
        cluster.connect_options("labcat"),
        settings.database.pool_size(),
        settings.database.acquire_timeout(),
    );
    db::migrate(&pool).await.unwrap();
    let (secret, _) = issue_key(&pool, "alice", "test", &[Scope::Read, Scope::Write], None)
        .await
        .unwrap();
    let indexed_paths = db::metadata_index::sync(&pool, &[]).await.unwrap();
    let application = Application::build(&settings, pool.clone(), indexed_paths).unwrap();
    let base = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    let client = crate::helpers::http_client();
    let get = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .header("X-API-KEY", secret.expose())
            .send()
    };
    let created: serde_json::Value = client
        .post(format!("{base}/data_entries"))
        .header("X-API-KEY", secret.expose())
        .json(&json!({"raw_name": "before.mp4", "char_source_type": "sem"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry_path = format!("/data_entries/{}", created["data_id"].as_str().unwrap());
    assert_eq!(get(&entry_path).await.unwrap().status(), StatusCode::OK);

    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap();

    for path in [entry_path.as_str(), "/data_entries", "/readyz"] {
        let started = Instant::now();
        let response = get(path).await.unwrap();
        let took = started.elapsed();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(took < Duration::from_secs(4), "{path} took {took:?}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "service_unavailable", "{path}");
    }
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);

    // Same data directory, new postmaster; labcat is not restarted. A pooled connection
    // that died with the old postmaster fails its next request (503) and is replaced, so
    // each route answers again after at most one 503 per stale connection.
    let cluster = start_cluster(root.path().to_owned()).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    for path in [entry_path.as_str(), "/readyz", "/data_entries"] {
        loop {
            let status = get(path).await.unwrap().status();
            if status == StatusCode::OK {
                break;
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert!(
                Instant::now() < deadline,
                "{path} still {status} after the restart"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let create_after = || {
        client
            .post(format!("{base}/data_entries"))
            .header("X-API-KEY", secret.expose())
            .json(&json!({"raw_name": "after.mp4", "char_source_type": "sem"}))
            .send()
    };
    let mut status = create_after().await.unwrap().status();
    while status == StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline {
        status = create_after().await.unwrap().status();
    }
    assert_eq!(status, StatusCode::CREATED);

    pool.close().await;
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap();
}
