//! Two real `labcat` processes against one database.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures_util::future::join_all;
use labcat::domain::Scope;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::fresh_database_url;

struct Instance {
    child: Child,
    address: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `labcat serve` on a free port and waits for its banner.
fn start_instance(database_url: &str) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_labcat"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("DATABASE_URL", database_url)
        .env("LABCAT__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("labcat starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut banner = String::new();
    BufReader::new(stdout)
        .read_line(&mut banner)
        .expect("a banner line");
    let address = banner
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in banner {banner:?}"))
        .to_owned();
    Instance { child, address }
}

/// Two instances on one fresh database, its pool, and a read+write key both accept.
async fn two_instances_with_a_key() -> (sqlx::PgPool, String, [Instance; 2]) {
    let database_url = fresh_database_url().await;
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let (secret, _) =
        labcat::auth::issue_key(&pool, "lab", "test", &[Scope::Read, Scope::Write], None)
            .await
            .unwrap();
    let instances = [start_instance(&database_url), start_instance(&database_url)];
    (pool, secret.expose().to_owned(), instances)
}

#[tokio::test]
async fn two_processes_lose_no_update_and_keep_a_complete_history() {
    let (pool, key, instances) = two_instances_with_a_key().await;
    let client = crate::helpers::http_client();

    let created: Value = client
        .post(format!("{}/data_entries", instances[0].address))
        .header("X-API-KEY", &key)
        .json(&json!({"raw_name": "shared.mp4", "char_source_type": "xps", "metadata": {"counter": 0}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["data_id"].as_str().unwrap().to_owned();

    let merges = 40;
    let merge_requests = (0..merges).map(|i| {
        let url = format!("{}/data_entries/{id}/metadata", instances[i % 2].address);
        let request = client
            .patch(url)
            .header("X-API-KEY", &key)
            .json(&json!({format!("m{i}"): i}));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    });
    // Conditional read-increment-write loops: a 412 means "re-read and try again".
    let increments_per_worker = 5;
    let counters = (0..4).map(|worker| {
        let base = instances[worker % 2].address.clone();
        let (client, key, id) = (client.clone(), key.clone(), id.clone());
        async move {
            let mut done = 0;
            let mut conflicts = 0;
            while done < increments_per_worker {
                let response = client
                    .get(format!("{base}/data_entries/{id}"))
                    .header("X-API-KEY", &key)
                    .send()
                    .await
                    .unwrap();
                let etag = response.headers()["etag"].to_str().unwrap().to_owned();
                let entry: Value = response.json().await.unwrap();
                let counter = entry["metadata"]["counter"].as_i64().unwrap();
                let response = client
                    .patch(format!("{base}/data_entries/{id}/metadata"))
                    .header("X-API-KEY", &key)
                    .header("If-Match", etag)
                    .json(&json!({"counter": counter + 1}))
                    .send()
                    .await
                    .unwrap();
                match response.status() {
                    StatusCode::OK => done += 1,
                    StatusCode::PRECONDITION_FAILED => conflicts += 1,
                    other => panic!("unexpected {other}"),
                }
            }
            conflicts
        }
    });
    let (_, conflicts) = tokio::join!(join_all(merge_requests), join_all(counters));
    let conflicts: i32 = conflicts.into_iter().sum();

    let entry: Value = client
        .get(format!("{}/data_entries/{id}", instances[1].address))
        .header("X-API-KEY", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let metadata = entry["metadata"].as_object().unwrap();
    for i in 0..merges {
        assert_eq!(metadata[&format!("m{i}")], json!(i), "merge {i} kept");
    }
    assert_eq!(
        metadata["counter"],
        json!(4 * increments_per_worker),
        "no increment lost ({conflicts} retries)"
    );
    let final_revision = entry["revision"].as_i64().unwrap();
    assert_eq!(
        final_revision,
        1 + merges as i64 + 4 * increments_per_worker
    );

    let revisions: Vec<i64> = sqlx::query_scalar(
        "SELECT revision FROM data_entry_history WHERE data_id = $1::uuid ORDER BY history_id",
    )
    .bind(&id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        revisions,
        (1..=final_revision).collect::<Vec<_>>(),
        "complete and in revision order"
    );
    let distinct: BTreeSet<i64> = revisions.iter().copied().collect();
    assert_eq!(distinct.len(), revisions.len());
}

#[tokio::test]
async fn a_cursor_made_by_one_instance_pages_on_another_and_a_tampered_one_is_refused() {
    let (_pool, key, instances) = two_instances_with_a_key().await;
    let client = crate::helpers::http_client();
    for i in 0..3 {
        let status = client
            .post(format!("{}/data_entries", instances[0].address))
            .header("X-API-KEY", &key)
            .json(&json!({"raw_name": format!("run{i}.vms"), "char_source_type": "xps"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::CREATED);
    }
    let first = client
        .get(format!("{}/data_entries?limit=2", instances[0].address))
        .header("X-API-KEY", &key)
        .send()
        .await
        .unwrap();
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let query = &link[link.find('?').unwrap()..link.find('>').unwrap()];
    let next = |address: &str, query: String| {
        client
            .get(format!("{address}/data_entries{query}"))
            .header("X-API-KEY", &key)
            .send()
    };
    let second = next(&instances[1].address, query.to_owned()).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let rest: Value = second.json().await.unwrap();
    assert_eq!(rest.as_array().unwrap().len(), 1);

    // The same cursor with its signature cut or its payload changed.
    let cursor = query
        .split("cursor=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let (payload, tag) = cursor.split_once('.').unwrap();
    for forged in [payload.to_owned(), format!("{payload}x.{tag}")] {
        let answer = next(&instances[1].address, format!("?cursor={forged}"))
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{forged}"
        );
    }
}
