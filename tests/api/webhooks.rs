//! Webhooks: managed by project admins, delivered signed to a receiver on 127.0.0.1 (with
//! `webhooks.allow_private_networks`), retried, and never sent inwards by default.
//! (tests/webhooks checks the signatures with the `standardwebhooks` package.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::helpers::{TestApp, send, spawn_app, spawn_app_with};
use labcat::config::Settings;
use labcat::domain::Scope;

/// What the receiver was sent, and how it answers: the first `fail_first` requests get a
/// 503.
#[derive(Default)]
struct Received {
    /// (webhook-id, body, webhook-signature, webhook-timestamp, the body as sent)
    requests: Vec<(String, Value, String, String, String)>,
    fail_first: usize,
    answered: usize,
}

struct Receiver {
    url: String,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Self {
        let received = Arc::new(Mutex::new(Received {
            fail_first,
            ..Received::default()
        }));
        let shared = received.clone();
        let server = HttpServer::new(move || {
            let shared = shared.clone();
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let shared = shared.clone();
                async move {
                    let mut received = shared.lock().unwrap();
                    received.answered += 1;
                    if received.answered <= received.fail_first {
                        return HttpResponse::ServiceUnavailable().finish();
                    }
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default()
                    };
                    let raw = String::from_utf8(body.to_vec()).unwrap();
                    let body: Value = serde_json::from_str(&raw).unwrap();
                    received.requests.push((
                        header("webhook-id"),
                        body,
                        header("webhook-signature"),
                        header("webhook-timestamp"),
                        raw,
                    ));
                    HttpResponse::NoContent().finish()
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            received,
        }
    }

    async fn wait_for(&self, count: usize) -> Vec<(String, Value, String, String, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let requests = self.received.lock().unwrap().requests.clone();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} deliveries",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn quick_webhooks(settings: &mut Settings) {
    settings.webhooks.allow_private_networks = true;
    settings.webhooks.retry_initial_seconds = 0.2;
    settings.webhooks.attempt_timeout_seconds = 2.0;
}

async fn personal_project(app: &TestApp) -> String {
    let (_, projects) = send(app.get("/projects")).await;
    projects[0]["project_id"].as_str().unwrap().to_owned()
}

async fn create_webhook(app: &TestApp, project: &str, url: &str, events: Value) -> Value {
    let (status, webhook) = send(
        app.request(Method::POST, &format!("/projects/{project}/webhooks"))
            .json(&json!({"url": url, "events": events})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    webhook
}

#[tokio::test]
async fn a_webhook_is_sent_each_wanted_event_signed_and_in_order_even_after_failures() {
    let app = spawn_app_with(quick_webhooks).await;
    let project = personal_project(&app).await;
    // The first two attempts fail; the deliveries are retried and arrive later.
    let receiver = Receiver::start(2);
    let webhook = create_webhook(
        &app,
        &project,
        &receiver.url,
        json!(["entry.created", "entry.updated"]),
    )
    .await;
    let secret = webhook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));

    let id = app.create_entry_id(json!({})).await;
    for n in 0..3 {
        send(app.patch_json(
            &format!("/data_entries/{id}"),
            &json!({"metadata": {"n": n}}),
        ))
        .await;
    }
    send(app.request(Method::DELETE, &format!("/data_entries/{id}"))).await;
    let received = receiver.wait_for(4).await;
    let revisions: Vec<i64> = received
        .iter()
        .map(|(_, body, ..)| body["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(
        revisions,
        [1, 2, 3, 4],
        "one entry's events arrive in order"
    );
    assert!(
        received
            .iter()
            .all(|(_, body, ..)| body["type"] != "entry.deleted"),
        "only the types asked for"
    );

    // Each signature is the Standard Webhooks HMAC of "{id}.{timestamp}.{body}".
    let key = base64_decode(secret.strip_prefix("whsec_").unwrap());
    for (message_id, _, signature, timestamp, raw) in &received {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{message_id}.{timestamp}.{raw}").as_bytes());
        let expected = format!("v1,{}", base64_encode(&mac.finalize().into_bytes()));
        assert_eq!(signature, &expected);
    }

    // The listing shows each delivery: delivered, with its attempts.
    let webhook_id = webhook["webhook_id"].as_str().unwrap();
    let (status, deliveries) = send(app.get(&format!(
        "/projects/{project}/webhooks/{webhook_id}/deliveries"
    )))
    .await;
    assert_eq!(status, StatusCode::OK);
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 4);
    assert!(
        deliveries.iter().all(|d| d["status"] == "delivered"),
        "{deliveries:?}"
    );
    let attempts: i64 = deliveries
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(attempts, 4 + 2, "two failed attempts, then each once");

    // Redelivering sends the same message again.
    let first = deliveries.last().unwrap()["delivery_id"].as_str().unwrap();
    let (status, _) = send(app.request(
        Method::POST,
        &format!("/projects/{project}/webhooks/{webhook_id}/deliveries/{first}/redeliver"),
    ))
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let again = receiver.wait_for(5).await;
    assert_eq!(
        again[4].0, first,
        "the webhook-id of a redelivery is the delivery's"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn several_webhooks_are_each_sent_exactly_their_projects_events_of_their_types() {
    let app = spawn_app_with(quick_webhooks).await;
    let personal = personal_project(&app).await;
    let (status, other) = send(
        app.request(Method::POST, "/projects")
            .json(&json!({"name": "Other"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let other = other["project_id"].as_str().unwrap().to_owned();
    let (created, updated, both) = (Receiver::start(0), Receiver::start(0), Receiver::start(0));
    create_webhook(&app, &personal, &created.url, json!(["entry.created"])).await;
    create_webhook(&app, &personal, &updated.url, json!(["entry.updated"])).await;
    create_webhook(
        &app,
        &other,
        &both.url,
        json!(["entry.created", "entry.updated"]),
    )
    .await;

    for project in [&personal, &other] {
        let id = app.create_entry_id(json!({"project_id": project})).await;
        send(app.patch_json(
            &format!("/data_entries/{id}"),
            &json!({"metadata": {"n": 1}}),
        ))
        .await;
    }
    let told = |received: Vec<(String, Value, String, String, String)>| -> Vec<(String, String)> {
        received
            .iter()
            .map(|(_, body, ..)| {
                (
                    body["project_id"].as_str().unwrap().to_owned(),
                    body["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        told(created.wait_for(1).await),
        [(personal.clone(), "entry.created".to_owned())]
    );
    assert_eq!(
        told(updated.wait_for(1).await),
        [(personal.clone(), "entry.updated".to_owned())]
    );
    assert_eq!(
        told(both.wait_for(2).await),
        [
            (other.clone(), "entry.created".to_owned()),
            (other.clone(), "entry.updated".to_owned())
        ]
    );
    // Nothing more arrives for any of them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (receiver, count) in [(&created, 1), (&updated, 1), (&both, 2)] {
        assert_eq!(receiver.received.lock().unwrap().requests.len(), count);
    }
}

#[tokio::test]
async fn a_webhook_to_a_private_address_or_plain_http_is_refused_by_default() {
    let app = spawn_app().await;
    let project = personal_project(&app).await;
    for url in [
        "http://hooks.example.org/labcat",
        "https://127.0.0.1/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",
        "ftp://example.org/",
    ] {
        let (status, body) = send(
            app.request(Method::POST, &format!("/projects/{project}/webhooks"))
                .json(&json!({"url": url, "events": ["entry.created"]})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["errors"][0]["field"], "url", "{url}");
    }
    let (status, _) = send(
        app.request(Method::POST, &format!("/projects/{project}/webhooks"))
            .json(&json!({"url": "https://hooks.example.org/labcat", "events": ["entry.created"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_delivery_is_checked_again_when_sent_and_never_goes_inwards() {
    // A webhook saved where private networks were allowed (written straight into the
    // database here), served by an instance where they are not: nothing is sent.
    let app = spawn_app().await;
    let project = personal_project(&app).await;
    let receiver = Receiver::start(0);
    sqlx::query(
        "INSERT INTO webhooks (webhook_id, project_id, url, events, secret, created_by, cursor)
         VALUES (gen_random_uuid(), $1::uuid, $2, '{entry.created}', '\\x00', 'alice', 0)",
    )
    .bind(&project)
    .bind(&receiver.url)
    .execute(&app.pool)
    .await
    .unwrap();
    app.create_entry_id(json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let error = loop {
        let error: Option<String> =
            sqlx::query_scalar("SELECT last_error FROM webhook_deliveries LIMIT 1")
                .fetch_optional(&app.pool)
                .await
                .unwrap()
                .flatten();
        if let Some(error) = error {
            break error;
        }
        assert!(Instant::now() < deadline, "no attempt was made");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(error.starts_with("refused"), "{error}");
    assert_eq!(
        receiver.received.lock().unwrap().answered,
        0,
        "nothing reached 127.0.0.1"
    );
}

#[tokio::test]
async fn webhooks_are_managed_by_admins_and_invisible_to_others() {
    let app = spawn_app().await;
    let (status, project) = send(
        app.request(Method::POST, "/projects")
            .json(&json!({"name": "Lab"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let project = project["project_id"].as_str().unwrap().to_owned();
    send(
        app.request(Method::PUT, &format!("/projects/{project}/members/erin"))
            .json(&json!({"role": "editor"})),
    )
    .await;
    let erin = app.key_for("erin", &[Scope::Read, Scope::Write]).await;
    let frank = app.key_for("frank", &[Scope::Read, Scope::Write]).await;
    let webhook = create_webhook(
        &app,
        &project,
        "https://hooks.example.org/x",
        json!(["entry.updated"]),
    )
    .await;
    let webhook_id = webhook["webhook_id"].as_str().unwrap();
    let path = format!("/projects/{project}/webhooks/{webhook_id}");

    // The secret is shown once.
    let (status, shown) = send(app.get(&path)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(shown.get("secret").is_none());
    let (_, listed) = send(app.get(&format!("/projects/{project}/webhooks"))).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none());
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhooks")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let exposed = webhook["secret"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(exposed.strip_prefix("whsec_").unwrap()));
    assert_ne!(
        stored,
        base64_decode(exposed.strip_prefix("whsec_").unwrap()),
        "stored sealed"
    );

    // An editor may not; someone outside the project cannot tell it exists.
    let (status, _) = send(app.request_as(&erin, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        app.request_as(
            &erin,
            Method::POST,
            &format!("/projects/{project}/webhooks"),
        )
        .json(&json!({"url": "https://a.example/", "events": ["entry.created"]})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, missing) = send(app.request_as(&frank, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let elsewhere = format!("/projects/{}/webhooks/{webhook_id}", uuid::Uuid::new_v4());
    let (status, also_missing) = send(app.request_as(&frank, Method::GET, &elsewhere)).await;
    assert_eq!(
        (status, missing["code"].clone()),
        (StatusCode::NOT_FOUND, also_missing["code"].clone())
    );

    // PATCH: events, off, a new secret.
    let (status, changed) = send(app.patch_json(&path, &json!({"events": ["entry.created", "entry.deleted"], "enabled": false, "rotate_secret": true}))).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["events"], json!(["entry.created", "entry.deleted"]));
    assert_eq!(changed["enabled"], false);
    assert!(changed["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(changed["secret"], webhook["secret"]);
    for bad in [
        json!({"events": []}),
        json!({"url": "http://x.example/"}),
        json!({"colour": 1}),
        json!({"enabled": "yes"}),
    ] {
        let (status, body) = send(app.patch_json(&path, &bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = send(app.request(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(app.get(&path)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_with_the_reason() {
    let app = spawn_app_with(|s| {
        quick_webhooks(s);
        s.webhooks.retry_initial_seconds = 0.05;
        s.webhooks.disable_after_failures = 3;
    })
    .await;
    let project = personal_project(&app).await;
    let receiver = Receiver::start(usize::MAX);
    let webhook = create_webhook(&app, &project, &receiver.url, json!(["entry.created"])).await;
    app.create_entry_id(json!({})).await;
    let path = format!(
        "/projects/{project}/webhooks/{}",
        webhook["webhook_id"].as_str().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, shown) = send(app.get(&path)).await;
        if shown["enabled"] == false {
            let reason = shown["disabled_reason"].as_str().unwrap();
            assert!(
                reason.contains("3 failed attempts") && reason.contains("503"),
                "{reason}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never disabled: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, deliveries) = send(app.get(&format!("{path}/deliveries"))).await;
    assert_eq!(deliveries[0]["status"], "pending");
    assert_eq!(deliveries[0]["last_status_code"], 503);
    assert!(deliveries[0]["next_attempt_at"].is_string());
}
