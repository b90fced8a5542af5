//! `/v2/projects` and members: the shapes sevenbridges-python needs, and permissions as
//! roles (tests/sdk runs the real client over the same routes).

use labcat::domain::Scope;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app};

fn sbg(app: &TestApp, key: &str, method: Method, path: &str) -> RequestBuilder {
    app.anonymous(method, &format!("/v2{path}"))
        .header("X-SBG-Auth-Token", key)
        .header("Content-Type", "application/json")
}

fn code(body: &Value) -> &Value {
    &body["code"]
}

#[tokio::test]
async fn a_project_has_every_member_the_client_reads() {
    let app = spawn_app().await;
    let key = &app.api_key;
    let (status, project) =
        send(sbg(&app, key, Method::POST, "/projects").json(&json!({"name": "GaN Run 3"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(project["id"], "alice/gan-run-3");
    assert_eq!(
        project["href"],
        format!("{}/v2/projects/alice/gan-run-3", app.address)
    );
    assert_eq!(project["type"], "v2");
    assert!(uuid::Uuid::parse_str(project["billing_group"].as_str().unwrap()).is_ok());
    assert_eq!(
        (&project["tags"], &project["settings"]),
        (&json!([]), &json!({}))
    );
    for key in ["description", "root_folder", "category"] {
        assert!(project[key].is_null(), "{key} present and null");
    }
    assert!(project["created_on"].as_str().unwrap().ends_with('Z'));

    // The client's form: a trailing slash, a GET body of `null`, `fields=_all`.
    let (status, page) = send(
        sbg(
            &app,
            key,
            Method::GET,
            "/projects/?fields=_all&name=GaN+Run+3",
        )
        .body("null"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["href"].as_str().unwrap().starts_with(&app.address));
    let (_, all) = send(sbg(&app, key, Method::GET, "/projects/alice?limit=1")).await;
    assert_eq!(all["items"][0]["id"], "alice/personal");
    assert_eq!(all["links"][0]["rel"], "next");

    let (status, renamed) = send(
        sbg(&app, key, Method::PATCH, "/projects/alice/gan-run-3")
            .json(&json!({"name": "Renamed", "description": "d", "settings": {"locked": true}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&renamed["id"], &renamed["name"]),
        (&json!("alice/gan-run-3"), &json!("Renamed"))
    );
    assert_eq!(renamed["settings"], json!({"locked": true}));

    let (status, body) =
        send(sbg(&app, key, Method::POST, "/projects").json(&json!({"name": " "}))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, &json!(3007))
    );
    let (status, body) = send(sbg(&app, key, Method::GET, "/projects/bob/personal")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, &json!(3002)));

    let deleted = sbg(&app, key, Method::DELETE, "/projects/alice/gan-run-3").body("{}");
    assert_eq!(
        deleted.send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let (status, _) = send(sbg(&app, key, Method::GET, "/projects/alice/gan-run-3")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn permissions_are_roles_and_decide_what_a_member_may_do() {
    let app = spawn_app().await;
    let key = &app.api_key;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    send(sbg(&app, key, Method::POST, "/projects").json(&json!({"name": "shared"}))).await;
    let members = "/projects/alice/shared/members";

    let (status, member) = send(sbg(&app, key, Method::POST, members).json(
        &json!({"username": "bob", "type": "USER", "permissions": {"write": true, "copy": true}}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert_eq!(member["href"], format!("{}/v2{members}/bob", app.address));
    assert_eq!(
        (&member["id"], &member["type"]),
        (&json!("bob"), &json!("USER"))
    );
    assert_eq!(
        member["permissions"],
        json!({"read": true, "copy": true, "write": true, "execute": false, "admin": false})
    );

    // bob, an editor, writes a file of the shared project; `project=` finds it.
    let (_, project) = send(app.get("/projects")).await;
    let shared = project
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "shared")
        .unwrap();
    let id = app
        .create_entry_id(json!({"raw_name": "s.fastq", "project_id": shared["project_id"]}))
        .await;
    let (_, page) = send(sbg(
        &app,
        &bob,
        Method::GET,
        "/files?project=alice%2Fshared",
    ))
    .await;
    assert_eq!(page["items"][0]["id"], id);
    assert_eq!(page["items"][0]["project"], "alice/shared");
    let rename = || {
        send(sbg(&app, &bob, Method::PATCH, &format!("/files/{id}")).json(&json!({"name": "t"})))
    };
    assert_eq!(rename().await.0, StatusCode::OK);

    // Demoted (twice: the client repeats the same PATCH), bob may only read.
    for _ in 0..2 {
        let (status, permissions) = send(
            sbg(
                &app,
                key,
                Method::PATCH,
                &format!("{members}/bob/permissions"),
            )
            .json(&json!({"write": false, "execute": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            permissions,
            json!({"read": true, "copy": true, "write": false, "execute": true, "admin": false})
        );
    }
    let (status, body) = rename().await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, &json!(3001)));
    let (status, body) =
        send(sbg(&app, &bob, Method::POST, members).json(&json!({"username": "carol"}))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, &json!(3001)));

    let (_, page) = send(sbg(&app, &bob, Method::GET, members)).await;
    let names: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["username"])
        .collect();
    assert_eq!(names, [&json!("alice"), &json!("bob")]);

    // The last admin stays.
    let (status, _) = send(
        sbg(
            &app,
            key,
            Method::PATCH,
            &format!("{members}/alice/permissions"),
        )
        .json(&json!({"admin": false})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let removed = sbg(&app, key, Method::DELETE, &format!("{members}/bob")).body("{}");
    assert_eq!(
        removed.send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let (status, body) = rename().await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = send(sbg(&app, &bob, Method::GET, "/files?project=alice/shared")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, &json!(3002)));
    let (status, body) = send(sbg(&app, key, Method::GET, &format!("{members}/bob"))).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, &json!(3002)));
}

#[tokio::test]
async fn a_non_member_gets_exactly_what_a_missing_project_gets() {
    let app = spawn_app().await;
    let dave = app.key_for("dave", &[Scope::Read, Scope::Write]).await;
    let (status, _) = send(
        app.request(Method::POST, "/projects")
            .json(&json!({"name": "private"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for (method, template) in [
        (Method::GET, "/projects/{}"),
        (Method::PATCH, "/projects/{}"),
        (Method::DELETE, "/projects/{}"),
        (Method::GET, "/projects/{}/members"),
        (Method::GET, "/projects/{}/members/alice"),
        (Method::GET, "/files?project={}"),
    ] {
        let answer = |id: &'static str| {
            let path = template.replace("{}", id);
            let request = sbg(&app, &dave, method.clone(), &path);
            let request = if method == Method::PATCH {
                request.json(&json!({"description": "x"}))
            } else {
                request
            };
            async move {
                let (status, mut body) = send(request).await;
                let text = body["message"]
                    .as_str()
                    .unwrap_or_default()
                    .replace(id, "ID");
                body["message"] = Value::String(text);
                // The request id differs on every answer.
                body.as_object_mut().map(|b| b.remove("more_info"));
                (status, body)
            }
        };
        let hidden = answer("alice/private").await;
        let missing = answer("alice/missing").await;
        assert_eq!(hidden, missing, "{method} {template}");
        assert_eq!(hidden.0, StatusCode::NOT_FOUND, "{method} {template}");
    }
}
