//! The real `labcat` binary: start-up failures, graceful shutdown, the request log.

use std::process::Stdio;
use std::time::{Duration, Instant};

use labcat::auth::issue_key;
use labcat::domain::Scope;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::helpers::fresh_database_url;

/// `labcat` with a clean environment: only what the test sets counts.
fn labcat(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_labcat"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a command that should fail at start-up: (exit code, stderr, how long it took).
async fn failed_start(mut command: Command) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("labcat gives up within 20 s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout: {:?}",
        output.stdout
    );
    (output.status.code(), stderr, started.elapsed())
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let mut command = labcat(&["serve"]);
    command.env("LABCAT__SERVER__WORKERS", "abc");
    let (code, stderr, _) = failed_start(command).await;
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("labcat: invalid configuration"),
        "{stderr}"
    );
    assert!(stderr.contains("server.workers"), "{stderr}");

    let mut command = labcat(&["serve"]);
    command.env("LABCAT__RATE_LIMIT__READ_BURST", "0");
    let (code, stderr, _) = failed_start(command).await;
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("rate_limit.read_burst"), "{stderr}");
}

#[tokio::test]
async fn a_missing_database_stops_start_up_quickly_with_one_line() {
    let mut command = labcat(&["serve"]);
    command.env(
        "DATABASE_URL",
        "postgres://labcat:hunter2@127.0.0.1:1/labcat",
    );
    let (code, stderr, took) = failed_start(command).await;
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("labcat: cannot connect to the database at 127.0.0.1:1/labcat"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "no password in the message");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

struct Server {
    child: Child,
    base: String,
    stderr: JoinHandle<String>,
}

/// Starts `labcat serve` on a free port against `database_url`, with JSON logs.
async fn serve(database_url: &str) -> Server {
    let mut command = labcat(&["serve", "--addr", "127.0.0.1:0"]);
    command
        .env("DATABASE_URL", database_url)
        .env("LABCAT__LOG__FORMAT", "json");
    let mut child = command.spawn().expect("labcat starts");
    let mut stderr = child.stderr.take().unwrap();
    // Drain stderr all along, so a full pipe never blocks the server.
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .await
        .unwrap();
    let base = banner
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in the banner {banner:?}"))
        .to_owned();
    Server {
        child,
        base,
        stderr,
    }
}

impl Server {
    fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("still running") as i32;
        // SAFETY: kill(2) on the child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the exit (bounded) and returns the status and everything logged.
    async fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("labcat exits after the signal")
            .unwrap();
        (status, self.stderr.await.unwrap())
    }
}

async fn key_and_entry(database_url: &str, server: &Server) -> (String, String) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let (secret, _) = issue_key(&pool, "alice", "test", &[Scope::Read, Scope::Write], None)
        .await
        .unwrap();
    pool.close().await;
    let created: Value = crate::helpers::http_client()
        .post(format!("{}/data_entries", server.base))
        .header("X-API-KEY", secret.expose())
        .json(&json!({"raw_name": "slow.mp4", "char_source_type": "xps"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["data_id"].as_str().unwrap().to_owned();
    (secret.expose().to_owned(), id)
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_then_exits_0() {
    let database_url = fresh_database_url().await;
    let server = serve(&database_url).await;
    let (key, id) = key_and_entry(&database_url, &server).await;

    // Hold the row so the PATCH stays in flight until the test lets go.
    let mut holder = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url)
        .await
        .unwrap();
    let mut lock = sqlx::Connection::begin(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM data_entries WHERE data_id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut *lock)
        .await
        .unwrap();
    let patch = tokio::spawn(
        crate::helpers::http_client()
            .patch(format!("{}/data_entries/{id}", server.base))
            .header("X-API-KEY", &key)
            .json(&json!({"metadata": {"finished": true}}))
            .send(),
    );
    let mut watcher = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the PATCH never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    if patch.is_finished() {
        let answer = patch.await.unwrap().unwrap();
        let body = answer.text().await.unwrap();
        let (_, log) = server.finish().await;
        panic!("the PATCH was answered before it could finish: {body}\n{log}");
    }
    lock.rollback().await.unwrap();

    let response = patch
        .await
        .unwrap()
        .expect("the in-flight PATCH is answered");
    assert_eq!(response.status(), StatusCode::OK);
    let entry: Value = response.json().await.unwrap();
    assert_eq!(entry["metadata"], json!({"finished": true}));
    let (status, log) = server.finish().await;
    assert!(status.success(), "exit status {status:?}; log:\n{log}");
    assert!(
        log.contains("stopped serving; closing the database pool"),
        "{log}"
    );
    sqlx::Connection::close(holder).await.unwrap();
    // Backends end a moment after their client goes; none may stay.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} connections left open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_request_log_has_one_json_line_per_request_and_never_the_secret_or_body() {
    let database_url = fresh_database_url().await;
    let server = serve(&database_url).await;
    let (key, id) = key_and_entry(&database_url, &server).await;
    let marker = "body-marker-7f3a";
    let response = crate::helpers::http_client()
        .patch(format!("{}/data_entries/{id}", server.base))
        .header("X-API-KEY", &key)
        .header("X-Request-Id", "log-me-42")
        .json(&json!({"metadata": {"note": marker}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = crate::helpers::http_client()
        .get(format!("{}/data_entries", server.base))
        .header("X-API-KEY", format!("lc_{}", "B".repeat(40)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    server.signal(libc::SIGINT);
    let (status, log) = server.finish().await;
    assert!(status.success(), "{status:?}");
    assert!(!log.contains(&key), "the secret is never logged");
    assert!(!log.contains(&"B".repeat(40)), "nor a rejected one");
    assert!(!log.contains(marker), "bodies are never logged");

    let requests: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .collect();
    let patch = requests
        .iter()
        .find(|line| line["request_id"] == "log-me-42")
        .unwrap_or_else(|| panic!("no log line for the PATCH in\n{log}"));
    assert_eq!(patch["method"], "PATCH");
    assert_eq!(patch["route"], "/data_entries/{data_id}");
    assert_eq!(patch["status"], 200);
    assert_eq!(patch["user_id"], "alice");
    assert!(patch["key_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(patch["latency_ms"].as_f64().is_some());
    let refused: Vec<&Value> = requests
        .iter()
        .filter(|line| line["status"] == 401)
        .collect();
    assert_eq!(refused.len(), 1, "{requests:?}");
    assert_eq!(refused[0]["user_id"], "");
}

#[tokio::test]
async fn labcat_keys_create_refuses_a_key_past_the_users_cap() {
    let database_url = fresh_database_url().await;
    let create = || {
        let mut command = labcat(&["keys", "create", "--user", "alice"]);
        command
            .env("DATABASE_URL", &database_url)
            .env("LABCAT__AUTH__MAX_ACTIVE_KEYS_PER_USER", "1");
        command
    };
    let first = create().output().await.unwrap();
    assert!(first.status.success(), "{first:?}");
    let second = create().output().await.unwrap();
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    assert!(second.stdout.is_empty(), "no secret printed");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("1 active keys") && stderr.contains("auth.max_active_keys_per_user"),
        "{stderr}"
    );
}
