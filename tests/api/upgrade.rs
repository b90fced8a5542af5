//! A database written by the release before projects upgrades in place: every user gets a
//! personal project holding what it owned, and every key answers as it did.

use labcat::auth::KeyHash;
use labcat::db;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::migrate::Migrator;

use crate::helpers::{fresh_pool, send, spawn_app_on};

/// The first migration of projects: everything before it is the previous schema.
const PROJECTS: i64 = 20261203000002;

#[tokio::test]
async fn a_database_from_before_projects_upgrades_and_every_key_answers_as_before() {
    let (pool, settings) = fresh_pool(|_| {}).await;
    let previous: Vec<_> = db::MIGRATOR
        .iter()
        .filter(|migration| migration.version < PROJECTS)
        .cloned()
        .collect();
    Migrator::with_migrations(previous)
        .run(&pool)
        .await
        .expect("the previous schema applies");

    // As the previous release stored them: two users, a key each, entries and a sample.
    let keys = [
        ("carol", format!("lc_{}", "c".repeat(40))),
        ("dave", format!("lc_{}", "d".repeat(40))),
    ];
    for (user, secret) in &keys {
        sqlx::query("INSERT INTO users (user_id) VALUES ($1)")
            .bind(user)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO api_keys (key_id, user_id, prefix, key_hash, name, scopes)
             VALUES (gen_random_uuid(), $1, left($2, 11), $3, 'old', ARRAY['read', 'write'])",
        )
        .bind(user)
        .bind(secret)
        .bind(KeyHash::of(secret).as_bytes())
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO physical_samples (physical_sample_id, user_id, name)
             VALUES (gen_random_uuid(), $1, 'wafer 7')",
        )
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, metadata)
             SELECT gen_random_uuid(), $1, $1 || '_' || i || '.vms', 'xps',
                    jsonb_build_object('run', i)
             FROM generate_series(1, 3) AS i",
        )
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }

    // What each key saw before the upgrade, straight from the old schema.
    let mut before = Vec::new();
    for (user, _) in &keys {
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT data_id FROM data_entries WHERE user_id = $1 ORDER BY upload_datetime, data_id",
        )
        .bind(user)
        .fetch_all(&pool)
        .await
        .unwrap();
        before.push(ids);
    }

    db::migrate(&pool).await.expect("the upgrade applies");
    let app = spawn_app_on(pool, &settings).await;

    for ((user, secret), ids) in keys.iter().zip(before) {
        let (status, found) = send(app.request_as(secret, Method::GET, "/data_entries")).await;
        assert_eq!(status, StatusCode::OK, "{user}");
        let found: Vec<String> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["data_id"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(found, expected, "{user} sees what it saw");
        for id in &ids {
            let path = format!("/data_entries/{id}");
            let (status, entry) = send(app.request_as(secret, Method::GET, &path)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(entry["user_id"], *user);
            let (status, _) = send(
                app.request_as(secret, Method::PATCH, &path)
                    .json(&json!({"pipeline_status": "success"})),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{user} still changes its own entries"
            );
        }
        let (_, samples) = send(app.request_as(secret, Method::GET, "/physical_samples")).await;
        assert_eq!(samples.as_array().unwrap().len(), 1, "{user}'s sample");
        let (_, projects) = send(app.request_as(secret, Method::GET, "/projects")).await;
        let projects: &Vec<Value> = projects.as_array().unwrap();
        assert_eq!(projects.len(), 1);
        assert_eq!(projects[0]["personal"], true);
        assert_eq!(projects[0]["role"], "admin");
        assert_eq!(projects[0]["physical_sample_count"], 1);
    }
    // Each sees none of the other's entries.
    let carol_entry = {
        let (_, found) = send(app.request_as(&keys[0].1, Method::GET, "/data_entries")).await;
        found[0]["data_id"].as_str().unwrap().to_owned()
    };
    let (status, _) = send(app.request_as(
        &keys[1].1,
        Method::GET,
        &format!("/data_entries/{carol_entry}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
