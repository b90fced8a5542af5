use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app};
use labcat::domain::Scope;

async fn create_project(app: &TestApp, key: &str, name: &str) -> Value {
    let (status, project) = send(
        app.request_as(key, Method::POST, "/projects")
            .json(&json!({"name": name})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    project
}

async fn set_role(app: &TestApp, project: &str, user: &str, role: &str) -> StatusCode {
    let path = format!("/projects/{project}/members/{user}");
    send(app.request(Method::PUT, &path).json(&json!({"role": role})))
        .await
        .0
}

fn id(value: &Value, member: &str) -> String {
    value[member].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn a_new_project_has_its_creator_as_admin_and_a_slug_from_its_name() {
    let app = spawn_app().await;
    let first = create_project(&app, &app.api_key, "rfranklin's Demo Project").await;
    assert_eq!(first["slug"], "rfranklin-s-demo-project");
    assert_eq!(first["role"], "admin");
    assert_eq!(first["created_by"], "alice");
    let second = create_project(&app, &app.api_key, "rfranklin's demo project").await;
    assert_eq!(second["slug"], "rfranklin-s-demo-project-2");

    let (status, projects) = send(app.get("/projects")).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Personal",
            "rfranklin's Demo Project",
            "rfranklin's demo project"
        ]
    );
    let (status, members) =
        send(app.get(&format!("/projects/{}/members", id(&first, "project_id")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members, json!([{"user_id": "alice", "role": "admin"}]));
}

#[tokio::test]
async fn an_entry_created_without_a_project_goes_to_the_personal_project() {
    let app = spawn_app().await;
    let entry = app.create_entry(json!({})).await;
    let (_, projects) = send(app.get("/projects")).await;
    let personal = &projects[0];
    assert_eq!(personal["personal"], true);
    assert_eq!(entry["project_id"], personal["project_id"]);
}

#[tokio::test]
async fn what_a_member_may_do_with_shared_entries_follows_its_role_at_once() {
    let app = spawn_app().await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let project = id(
        &create_project(&app, &app.api_key, "GaN growth").await,
        "project_id",
    );
    let entry = app.create_entry_id(json!({"project_id": project})).await;
    let entry_path = format!("/data_entries/{entry}");
    let patch = json!({"pipeline_status": "success"});

    let bob_get = || send(app.request_as(&bob, Method::GET, &entry_path));
    let bob_patch = || {
        send(
            app.request_as(&bob, Method::PATCH, &entry_path)
                .json(&patch),
        )
    };
    let bob_search = || send(app.request_as(&bob, Method::GET, "/data_entries"));

    assert_eq!(bob_get().await.0, StatusCode::NOT_FOUND);
    assert_eq!(bob_patch().await.0, StatusCode::NOT_FOUND);
    assert_eq!(bob_search().await.1, json!([]));

    assert_eq!(
        set_role(&app, &project, "bob", "viewer").await,
        StatusCode::OK
    );
    assert_eq!(bob_get().await.0, StatusCode::OK);
    let (status, problem) = bob_patch().await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["code"], "insufficient_role");
    assert_eq!(bob_search().await.1.as_array().unwrap().len(), 1);

    assert_eq!(
        set_role(&app, &project, "bob", "editor").await,
        StatusCode::OK
    );
    let (status, changed) = bob_patch().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(changed["pipeline_status"], "success");

    let path = format!("/projects/{project}/members/bob");
    let (status, _) = send(app.request(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(bob_get().await.0, StatusCode::NOT_FOUND);
    let (status, _) =
        send(app.request_as(&bob, Method::GET, &format!("/projects/{project}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_non_member_learns_nothing_an_unknown_id_would_not_tell() {
    let app = spawn_app().await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let project = id(
        &create_project(&app, &app.api_key, "private").await,
        "project_id",
    );
    let entry = app.create_entry_id(json!({"project_id": project})).await;
    let missing = uuid::Uuid::now_v7().to_string();
    for (method, template) in [
        (Method::GET, "/data_entries/{}"),
        (Method::PATCH, "/data_entries/{}"),
        (Method::DELETE, "/data_entries/{}"),
        (Method::GET, "/data_entries/{}/metadata"),
        (Method::GET, "/data_entries/{}/history"),
        (Method::GET, "/projects/{}"),
        (Method::GET, "/projects/{}/members"),
    ] {
        let answer = |target: String| {
            let path = template.replace("{}", &target);
            let request = app.request_as(&bob, method.clone(), &path);
            let request = if method == Method::PATCH {
                request.json(&json!({"raw_name": "x"}))
            } else {
                request
            };
            async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                let body = response.text().await.unwrap();
                (status, body.replace(&target, "ID"))
            }
        };
        let target = if template.starts_with("/projects") {
            &project
        } else {
            &entry
        };
        let (hidden_status, hidden) = answer(target.clone()).await;
        let (missing_status, absent) = answer(missing.clone()).await;
        assert_eq!(hidden_status, missing_status, "{method} {template}");
        let strip = |body: &str| {
            let mut value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if let Some(object) = value.as_object_mut() {
                object.remove("request_id");
            }
            value
        };
        assert_eq!(strip(&hidden), strip(&absent), "{method} {template}");
    }
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_removed() {
    let app = spawn_app().await;
    let project = id(
        &create_project(&app, &app.api_key, "solo").await,
        "project_id",
    );
    let (status, problem) = send(
        app.request(Method::PUT, &format!("/projects/{project}/members/alice"))
            .json(&json!({"role": "editor"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["code"], "last_admin");
    let (status, _) = send(app.request(
        Method::DELETE,
        &format!("/projects/{project}/members/alice"),
    ))
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        set_role(&app, &project, "bob", "admin").await,
        StatusCode::OK
    );
    assert_eq!(
        set_role(&app, &project, "alice", "viewer").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_project_holding_entries_is_deleted_only_with_force() {
    let app = spawn_app().await;
    let project = id(
        &create_project(&app, &app.api_key, "old runs").await,
        "project_id",
    );
    let entry = app.create_entry_id(json!({"project_id": project})).await;
    let path = format!("/projects/{project}");
    let (status, problem) = send(app.request(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["code"], "project_not_empty");
    let (status, _) = send(app.request(Method::DELETE, &format!("{path}?force=true"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(send(app.get(&path)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        send(app.get(&format!("/data_entries/{entry}"))).await.0,
        StatusCode::NOT_FOUND
    );
    // The project is gone, so its entries' history went with it from view.
    let (status, _) = send(app.get(&format!("/data_entries/{entry}/history"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, projects) = send(app.get("/projects")).await;
    let personal = id(&projects[0], "project_id");
    let (status, problem) =
        send(app.request(Method::DELETE, &format!("/projects/{personal}"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["code"], "personal_project");
}

#[tokio::test]
async fn moving_an_entry_needs_write_access_to_both_projects_and_is_in_its_history() {
    let app = spawn_app().await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let shared = id(
        &create_project(&app, &app.api_key, "shared").await,
        "project_id",
    );
    let entry = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{entry}");

    let bobs = id(&create_project(&app, &bob, "bob's").await, "project_id");
    let (status, problem) = send(app.patch_json(&path, &json!({"project_id": bobs}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "unknown_project", "{problem}");

    let (status, moved) = send(app.patch_json(&path, &json!({"project_id": shared}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(moved["project_id"], shared.as_str());
    let (_, history) = send(app.get(&format!("{path}/history"))).await;
    assert_eq!(
        history[0]["changes"]["project_id"]["after"],
        shared.as_str()
    );

    assert_eq!(
        set_role(&app, &shared, "bob", "viewer").await,
        StatusCode::OK
    );
    let (status, _) = send(
        app.request_as(&bob, Method::PATCH, &path)
            .json(&json!({"project_id": bobs})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_partner_key_limited_to_one_project_creates_there_and_reaches_nothing_else() {
    let app = spawn_app().await;
    let project = id(
        &create_project(&app, &app.api_key, "with partner").await,
        "project_id",
    );
    let private = app.create_entry_id(json!({})).await;
    let (status, minted) = send(app.request(Method::POST, "/api_keys").json(&json!({
        "name": "partner", "scopes": ["read", "write"], "projects": [project]
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    assert_eq!(minted["projects"], json!([project]));
    let partner = minted["key"].as_str().unwrap().to_owned();

    let (status, created) = send(
        app.request_as(&partner, Method::POST, "/data_entries")
            .json(&json!({"raw_name": "lims.csv", "char_source_type": "metrology"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["project_id"], project.as_str());
    let (_, listed) = send(app.request_as(&partner, Method::GET, "/data_entries")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (status, _) =
        send(app.request_as(&partner, Method::GET, &format!("/data_entries/{private}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, projects) = send(app.request_as(&partner, Method::GET, "/projects")).await;
    assert_eq!(projects.as_array().unwrap().len(), 1);

    // A key it mints cannot reach further, nor can it make projects outside its reach.
    let (status, problem) = send(app.request_as(&partner, Method::POST, "/api_keys").json(
        &json!({
            "name": "wider", "scopes": ["read"], "projects": [uuid::Uuid::now_v7()]
        }),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "projects_beyond_parent");
    let (status, _) = send(
        app.request_as(&partner, Method::POST, "/projects")
            .json(&json!({"name": "escape"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
