//! One table: every kind of route against every relationship a caller can have with an
//! entry's project, with the answer each must get.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app};
use labcat::domain::Scope;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    /// Any 2xx, or the item succeeded, or the entry is in the list.
    Ok,
    Forbidden,
    /// 404, or the item is not found, or the entry is absent from the list.
    Hidden,
}
use Answer::*;

/// How to read the answer of an operation.
#[derive(Clone, Copy)]
enum Reading {
    Status,
    NativeBulkItem,
    V2BulkItem,
    Listed,
    /// The entry is counted in `/data_entries/facets?facet=project_id&data_ids={entry}`.
    Counted,
}

struct Operation {
    name: &'static str,
    method: Method,
    /// `{entry}`, `{sample}` and `{project}` are replaced by the case's ids.
    path: &'static str,
    body: Option<Value>,
    reading: Reading,
    /// What needs what: `read`, `write` (editor) or `admin` (project admin).
    needs: &'static str,
}

fn operations() -> Vec<Operation> {
    let op = |name, method, path, body: Option<Value>, reading, needs| Operation {
        name,
        method,
        path,
        body,
        reading,
        needs,
    };
    use Reading::*;
    vec![
        op(
            "get entry",
            Method::GET,
            "/data_entries/{entry}",
            None,
            Status,
            "read",
        ),
        op(
            "patch entry",
            Method::PATCH,
            "/data_entries/{entry}",
            Some(json!({"pipeline_status": "success"})),
            Status,
            "write",
        ),
        op(
            "delete entry",
            Method::DELETE,
            "/data_entries/{entry}",
            None,
            Status,
            "write",
        ),
        op(
            "get metadata",
            Method::GET,
            "/data_entries/{entry}/metadata",
            None,
            Status,
            "read",
        ),
        op(
            "merge metadata",
            Method::PATCH,
            "/data_entries/{entry}/metadata",
            Some(json!({"k": 1})),
            Status,
            "write",
        ),
        op(
            "replace metadata",
            Method::PUT,
            "/data_entries/{entry}/metadata",
            Some(json!({"k": 2})),
            Status,
            "write",
        ),
        op(
            "history",
            Method::GET,
            "/data_entries/{entry}/history",
            None,
            Status,
            "read",
        ),
        op("search", Method::GET, "/data_entries", None, Listed, "read"),
        op(
            "facets",
            Method::GET,
            "/data_entries/facets?facet=project_id&data_ids={entry}",
            None,
            Counted,
            "read",
        ),
        op(
            "bulk patch",
            Method::PATCH,
            "/data_entries",
            Some(json!([{"data_id": "{entry}", "raw_name": "b"}])),
            NativeBulkItem,
            "write",
        ),
        op(
            "v2 get file",
            Method::GET,
            "/v2/files/{entry}",
            None,
            Status,
            "read",
        ),
        op(
            "v2 patch file",
            Method::PATCH,
            "/v2/files/{entry}",
            Some(json!({"name": "v2"})),
            Status,
            "write",
        ),
        op(
            "v2 delete file",
            Method::DELETE,
            "/v2/files/{entry}",
            None,
            Status,
            "write",
        ),
        op(
            "v2 file metadata",
            Method::GET,
            "/v2/files/{entry}/metadata",
            None,
            Status,
            "read",
        ),
        op(
            "v2 merge metadata",
            Method::PATCH,
            "/v2/files/{entry}/metadata",
            Some(json!({"k": "v"})),
            Status,
            "write",
        ),
        op(
            "v2 bulk get",
            Method::POST,
            "/v2/bulk/files/get",
            Some(json!({"file_ids": ["{entry}"]})),
            V2BulkItem,
            "read",
        ),
        op(
            "v2 bulk edit",
            Method::POST,
            "/v2/bulk/files/edit",
            Some(json!({"items": [{"id": "{entry}", "name": "e"}]})),
            V2BulkItem,
            "write",
        ),
        op(
            "get sample",
            Method::GET,
            "/physical_samples/{sample}",
            None,
            Status,
            "read",
        ),
        op(
            "get project",
            Method::GET,
            "/projects/{project}",
            None,
            Status,
            "read",
        ),
        op(
            "project members",
            Method::GET,
            "/projects/{project}/members",
            None,
            Status,
            "read",
        ),
        op(
            "project samples",
            Method::GET,
            "/projects/{project}/physical_samples",
            None,
            Status,
            "read",
        ),
        op(
            "rename project",
            Method::PATCH,
            "/projects/{project}",
            Some(json!({"name": "renamed"})),
            Status,
            "admin",
        ),
        op(
            "add member",
            Method::PUT,
            "/projects/{project}/members/zed",
            Some(json!({"role": "viewer"})),
            Status,
            "admin",
        ),
    ]
}

/// A caller and what it may do in the shared project.
struct Relationship {
    name: &'static str,
    key: String,
    /// The answer for an operation needing `read`, `write` and `admin`.
    answers: [Answer; 3],
}

async fn relationships(app: &TestApp, project: &str) -> Vec<Relationship> {
    let rw = [Scope::Read, Scope::Write];
    let member = |user: &'static str, role: &'static str| async move {
        let path = format!("/projects/{project}/members/{user}");
        let (status, _) = send(app.request(Method::PUT, &path).json(&json!({"role": role}))).await;
        assert_eq!(status, StatusCode::OK);
    };
    member("bob", "editor").await;
    member("carol", "viewer").await;
    member("erin", "admin").await;
    member("frank", "editor").await;
    // Erin's key is limited to a project of her own: the shared one is out of its reach.
    let erin = app.key_for("erin", &rw).await;
    let (_, own) = send(
        app.request_as(&erin, Method::POST, "/projects")
            .json(&json!({"name": "erin's"})),
    )
    .await;
    let (status, limited) = send(
        app.request_as(&erin, Method::POST, "/api_keys")
            .json(&json!({
                "name": "partner", "scopes": ["read", "write"], "projects": [own["project_id"]]
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{limited}");
    vec![
        Relationship {
            name: "admin",
            key: app.api_key.clone(),
            answers: [Ok, Ok, Ok],
        },
        Relationship {
            name: "editor",
            key: app.key_for("bob", &rw).await,
            answers: [Ok, Ok, Forbidden],
        },
        Relationship {
            name: "viewer",
            key: app.key_for("carol", &rw).await,
            answers: [Ok, Forbidden, Forbidden],
        },
        Relationship {
            name: "non-member",
            key: app.key_for("dave", &rw).await,
            answers: [Hidden, Hidden, Hidden],
        },
        Relationship {
            name: "key limited to another project",
            key: limited["key"].as_str().unwrap().to_owned(),
            answers: [Hidden, Hidden, Hidden],
        },
        Relationship {
            name: "read-only key of an editor",
            key: app.key_for("frank", &[Scope::Read]).await,
            answers: [Ok, Forbidden, Forbidden],
        },
    ]
}

fn observe(reading: Reading, status: StatusCode, body: &Value, entry: &str) -> Answer {
    let by_status = |status: u64| match status {
        200..=299 => Ok,
        403 => Forbidden,
        404 => Hidden,
        other => panic!("unexpected status {other}: {body}"),
    };
    match reading {
        // A key whose scopes forbid the whole request is refused before any item.
        _ if !status.is_success() => by_status(u64::from(status.as_u16())),
        Reading::Status => by_status(u64::from(status.as_u16())),
        Reading::NativeBulkItem => by_status(body[0]["status"].as_u64().expect("an item status")),
        Reading::V2BulkItem if body["items"][0].get("resource").is_some() => Ok,
        Reading::V2BulkItem => by_status(body["items"][0]["error"]["status"].as_u64().unwrap()),
        Reading::Listed => {
            let listed = body
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["data_id"] == entry);
            if listed { Ok } else { Hidden }
        }
        Reading::Counted => match body["project_id"].as_array().unwrap().as_slice() {
            [] => Hidden,
            [value] if value["count"] == 1 => Ok,
            other => panic!("unexpected facet values {other:?}"),
        },
    }
}

#[tokio::test]
async fn every_route_answers_every_relationship_as_its_role_and_key_allow() {
    let app = spawn_app().await;
    let (_, project) = send(
        app.request(Method::POST, "/projects")
            .json(&json!({"name": "shared"})),
    )
    .await;
    let project = project["project_id"].as_str().unwrap().to_owned();
    let (_, sample) = send(
        app.request(Method::POST, "/physical_samples")
            .json(&json!({"name": "wafer", "project_id": project})),
    )
    .await;
    let sample = sample["physical_sample_id"].as_str().unwrap().to_owned();
    let relationships = relationships(&app, &project).await;

    let mut wrong = Vec::new();
    for operation in operations() {
        let column = match operation.needs {
            "read" => 0,
            "write" => 1,
            _ => 2,
        };
        for relationship in &relationships {
            // A fresh entry each time: some operations delete or rename it.
            let entry = app.create_entry_id(json!({"project_id": project})).await;
            let fill = |text: &str| {
                text.replace("{entry}", &entry)
                    .replace("{sample}", &sample)
                    .replace("{project}", &project)
            };
            let path = fill(operation.path);
            let mut request = app.request_as(&relationship.key, operation.method.clone(), &path);
            if let Some(body) = &operation.body {
                let body: Value = serde_json::from_str(&fill(&body.to_string())).unwrap();
                request = request.json(&body);
            }
            let (status, body) = send(request).await;
            let answer = observe(operation.reading, status, &body, &entry);
            let expected = relationship.answers[column];
            if answer != expected {
                wrong.push(format!(
                    "{} as {}: {answer:?}, expected {expected:?} ({status} {body})",
                    operation.name, relationship.name
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
