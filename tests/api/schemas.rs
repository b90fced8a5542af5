//! Metadata schemas per project and data type (issue 15): enforce refuses every kind of
//! write whose resulting metadata does not validate, report stores and flags, versions and
//! history, the safety of a user's schema, who may change one, and the dry run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use labcat::domain::Scope;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, metric_value, send, spawn_app};

async fn new_project(app: &TestApp) -> String {
    let (status, project) = send(
        app.request(Method::POST, "/projects")
            .json(&json!({"name": "Growth"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    project["project_id"].as_str().unwrap().to_owned()
}

fn schema_path(project: &str, target: &str) -> String {
    format!("/projects/{project}/schemas/{target}")
}

async fn put_schema(
    app: &TestApp,
    project: &str,
    target: &str,
    body: Value,
) -> (StatusCode, Value) {
    send(
        app.request(Method::PUT, &schema_path(project, target))
            .json(&body),
    )
    .await
}

/// A temperature of at least 500 K is required; no other property may be a string.
fn growth_schema(mode: &str) -> Value {
    json!({
        "mode": mode,
        "schema": {
            "type": "object",
            "required": ["temperature"],
            "properties": {
                "temperature": {"x-dimension": "temperature"},
                "thickness_nm": {"type": "number", "minimum": 0}
            }
        }
    })
}

async fn entry(app: &TestApp, id: &str) -> Value {
    send(app.get(&format!("/data_entries/{id}"))).await.1
}

fn violations_at(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {problem}"))
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["keyword"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn enforce_refuses_every_kind_of_write_whose_result_does_not_validate_and_stores_nothing() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    let (status, schema) = put_schema(&app, &project, "xps", growth_schema("enforce")).await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    assert_eq!(schema["version"], 1);

    // Create: both problems listed, with pointers and keywords, and nothing created.
    let (status, problem) = send(app.request(Method::POST, "/data_entries").json(&json!({
        "raw_name": "a.vms", "char_source_type": "xps", "project_id": project,
        "metadata": {"thickness_nm": -1}
    })))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "schema_violation");
    let mut found = violations_at(&problem);
    found.sort();
    assert_eq!(
        found,
        [
            ("".to_owned(), "required".to_owned()),
            ("/thickness_nm".to_owned(), "minimum".to_owned())
        ]
    );
    let (_, listed) = send(app.get("/data_entries?data_type=xps")).await;
    assert_eq!(listed, json!([]));

    let good = json!({"temperature": {"value": 650, "unit": "degC"}, "thickness_nm": 3});
    let id = app
        .create_entry_id(json!({"char_source_type": "xps", "project_id": project,
                                "metadata": good}))
        .await;
    let before = entry(&app, &id).await;
    assert_eq!(before["metadata_valid"], true);
    assert_eq!(before["metadata_errors"], json!([]));

    let path = format!("/data_entries/{id}");
    let refused = [
        // Typed PATCH with a metadata merge that deletes the required key.
        app.patch_json(
            &path,
            &json!({"pipeline_status": "success",
                                      "metadata": {"temperature": null}}),
        ),
        // Metadata merge.
        app.patch_json(&format!("{path}/metadata"), &json!({"thickness_nm": -5})),
        // Metadata PUT.
        app.request(Method::PUT, &format!("{path}/metadata"))
            .json(&json!({"thickness_nm": 1})),
        // A quantity in a unit of another dimension.
        app.patch_json(
            &format!("{path}/metadata"),
            &json!({"temperature": {"value": 1, "unit": "mbar"}}),
        ),
    ];
    for request in refused {
        let (status, problem) = send(request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(problem["errors"][0]["path"].is_string(), "{problem}");
    }
    // A typed change of type into a schema'd type is checked too: a sem entry moving to xps.
    let other = app
        .create_entry_id(json!({"char_source_type": "sem", "project_id": project,
                                "metadata": {"thickness_nm": 2}}))
        .await;
    let (status, _) = send(app.patch_json(
        &format!("/data_entries/{other}"),
        &json!({"char_source_type": "xps"}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Bulk: the bad item is refused on its own, the good one applied.
    let (status, results) = send(app.patch_json(
        "/data_entries",
        &json!([{"data_id": id, "metadata": {"thickness_nm": "thick"}},
                {"data_id": other, "raw_name": "renamed"}]),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results[0]["status"], 422, "{results}");
    assert_eq!(results[0]["problem"]["errors"][0]["path"], "/thickness_nm");
    assert_eq!(results[1]["status"], 200, "{results}");

    let after = entry(&app, &id).await;
    assert_eq!(after, before, "the entry is exactly as it was");
    let (_, history) = send(app.get(&format!("{path}/history"))).await;
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "only the create: {history}"
    );

    // The unit message names the unit.
    let (_, problem) = send(app.patch_json(
        &format!("{path}/metadata"),
        &json!({"temperature": {"value": 1, "unit": "parsec"}}),
    ))
    .await;
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("'parsec'"), "{message}");
}

#[tokio::test]
async fn a_stale_if_match_is_a_412_before_the_document_is_checked() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    put_schema(&app, &project, "sem", growth_schema("enforce")).await;
    let id = app
        .create_entry_id(json!({"char_source_type": "sem", "project_id": project,
                                "metadata": {"temperature": {"value": 3, "unit": "K"}}}))
        .await;
    let path = format!("/data_entries/{id}/metadata");
    let stale = app
        .patch_json(&path, &json!({"temperature": null}))
        .header("If-Match", "\"7\"");
    let (status, _) = send(stale).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let current = app
        .patch_json(&path, &json!({"thickness_nm": 1}))
        .header("If-Match", "\"1\"");
    let (status, body) = send(current).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn thirty_concurrent_merges_valid_alone_never_store_a_combination_the_schema_forbids() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    // Any one key is fine; two of them together are not.
    let (status, _) = put_schema(
        &app,
        &project,
        "afm",
        json!({"mode": "enforce", "schema": {"type": "object", "maxProperties": 1}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let id = app
        .create_entry_id(json!({"char_source_type": "afm", "project_id": project}))
        .await;
    let path = format!("/data_entries/{id}/metadata");
    let merges = (0..30).map(|i| {
        let request = app.patch_json(&path, &json!({format!("key_{i}"): i}));
        async move { send(request).await.0 }
    });
    let statuses = futures_util::future::join_all(merges).await;
    let applied = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((applied, refused), (1, 29), "{statuses:?}");
    let stored = entry(&app, &id).await;
    assert_eq!(stored["metadata"].as_object().unwrap().len(), 1, "{stored}");
    assert_eq!(stored["revision"], 2);
}

#[tokio::test]
async fn report_mode_stores_the_write_flags_the_entry_and_the_filter_finds_it() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    put_schema(&app, &project, "raman", growth_schema("report")).await;
    let bad = app
        .create_entry(json!({"char_source_type": "raman", "project_id": project,
                             "metadata": {"thickness_nm": "thin"}}))
        .await;
    assert_eq!(
        bad["metadata"],
        json!({"thickness_nm": "thin"}),
        "stored as sent"
    );
    assert_eq!(bad["metadata_valid"], false);
    let mut found = violations_at(&json!({"errors": bad["metadata_errors"]}));
    found.sort();
    assert_eq!(
        found,
        [
            ("".to_owned(), "required".to_owned()),
            ("/thickness_nm".to_owned(), "type".to_owned())
        ]
    );
    let good = app
        .create_entry_id(json!({"char_source_type": "raman", "project_id": project,
                                "metadata": {"temperature": {"value": 600, "unit": "K"}}}))
        .await;
    let unchecked = app
        .create_entry_id(json!({"char_source_type": "sem"}))
        .await;

    let ids =
        |listed: &Value| -> Vec<String> { listed.as_array().unwrap().iter().map(id_of).collect() };
    let (status, flagged) = send(app.get("/data_entries?metadata_valid=false")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&flagged), [id_of(&bad)]);
    let (_, valid) = send(app.get("/data_entries?metadata_valid=true")).await;
    assert_eq!(ids(&valid), [good]);
    let (_, none) = send(app.get("/data_entries?metadata_valid=null")).await;
    assert_eq!(ids(&none), [unchecked]);
    let (status, _) = send(app.get("/data_entries?metadata_valid=maybe")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Fixing it clears the flag.
    let fixed = send(app.patch_json(
        &format!("/data_entries/{}/metadata", id_of(&bad)),
        &json!({"thickness_nm": 2, "temperature": {"value": 1, "unit": "K"}}),
    ))
    .await;
    assert_eq!(fixed.0, StatusCode::OK);
    assert_eq!(entry(&app, &id_of(&bad)).await["metadata_valid"], true);
}

#[tokio::test]
async fn changing_a_report_schema_rechecks_the_stored_entries_in_the_background() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    let mut ids = Vec::new();
    for thickness in [1, 5, 10] {
        ids.push(
            app.create_entry_id(json!({"char_source_type": "xrd", "project_id": project,
                                       "metadata": {"thickness_nm": thickness}}))
                .await,
        );
    }
    let (status, answer) = put_schema(
        &app,
        &project,
        "xrd",
        json!({"mode": "report",
               "schema": {"properties": {"thickness_nm": {"maximum": 4}}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["rechecking"], 3);
    let flags = wait_for_flags(&app, &ids, &[json!(true), json!(false), json!(false)]).await;
    assert_eq!(flags, [json!(true), json!(false), json!(false)]);

    // A newer version rechecks again; deleting it leaves no schema, so no flags.
    put_schema(
        &app,
        &project,
        "xrd",
        json!({"mode": "report",
               "schema": {"properties": {"thickness_nm": {"maximum": 7}}}}),
    )
    .await;
    wait_for_flags(&app, &ids, &[json!(true), json!(true), json!(false)]).await;
    let (status, _) = send(app.request(Method::DELETE, &schema_path(&project, "xrd"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_for_flags(&app, &ids, &[Value::Null, Value::Null, Value::Null]).await;
}

/// Polls the entries' `metadata_valid` until they are `expected` (at most 10 s).
async fn wait_for_flags(app: &TestApp, ids: &[String], expected: &[Value]) -> Vec<Value> {
    let mut flags = Vec::new();
    for _ in 0..100 {
        flags.clear();
        for id in ids {
            flags.push(entry(app, id).await["metadata_valid"].clone());
        }
        if flags == expected {
            return flags;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("flags stayed {flags:?}, expected {expected:?}");
}

#[tokio::test]
async fn each_put_is_a_version_and_the_history_names_the_version_each_change_was_checked_with() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    let id = app
        .create_entry_id(json!({"char_source_type": "oes", "project_id": project}))
        .await;
    put_schema(
        &app,
        &project,
        "default",
        json!({"mode": "report", "schema": {}}),
    )
    .await;
    send(app.patch_json(&format!("/data_entries/{id}/metadata"), &json!({"a": 1}))).await;
    put_schema(
        &app,
        &project,
        "default",
        json!({"mode": "enforce", "schema": {"type": "object"}}),
    )
    .await;
    send(app.patch_json(&format!("/data_entries/{id}/metadata"), &json!({"b": 2}))).await;

    let (status, current) = send(app.get(&schema_path(&project, "default"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (current["version"].clone(), current["mode"].clone()),
        (json!(2), json!("enforce"))
    );
    assert_eq!(current["char_source_type"], "default");
    let (status, versions) =
        send(app.get(&format!("{}/versions", schema_path(&project, "default")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");
    assert_eq!(versions[0]["version"], 1);
    assert!(versions[0]["retired_at"].is_string());

    let (_, history) = send(app.get(&format!("/data_entries/{id}/history"))).await;
    let schemas: Vec<Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["schema"].clone())
        .collect();
    assert_eq!(
        schemas,
        [
            json!({"char_source_type": "default", "version": 2}),
            json!({"char_source_type": "default", "version": 1}),
            Value::Null,
        ]
    );

    // A type's own schema wins over the default.
    put_schema(
        &app,
        &project,
        "oes",
        json!({"mode": "enforce", "schema": {"required": ["c"]}}),
    )
    .await;
    let (status, _) =
        send(app.patch_json(&format!("/data_entries/{id}/metadata"), &json!({"d": 1}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(app.request(Method::DELETE, &schema_path(&project, "oes"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(app.get(&schema_path(&project, "oes"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        send(app.patch_json(&format!("/data_entries/{id}/metadata"), &json!({"d": 1}))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_ref_outside_the_schema_is_never_fetched() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    let server = tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    let remote = format!("http://{address}/schema.json");
    let schemas = [
        json!({"$ref": remote}),
        json!({"properties": {"a": {"$ref": format!("{remote}#/definitions/a")}}}),
        json!({"$schema": remote, "type": "object"}),
        json!({"$id": format!("http://{address}/base/"), "$ref": "other.json"}),
        json!({"$ref": "file:///etc/passwd"}),
    ];
    for schema in schemas {
        let (status, problem) = put_schema(
            &app,
            &project,
            "sims",
            json!({"mode": "enforce", "schema": schema.clone()}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{schema}: {problem}"
        );
        assert_eq!(problem["errors"][0]["field"], "schema", "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(&address.to_string())
                || problem["detail"].as_str().unwrap().contains("file:"),
            "the problem names the reference: {problem}"
        );
        let (status, _) = send(
            app.request(
                Method::POST,
                &format!("{}/check", schema_path(&project, "sims")),
            )
            .json(&json!({"schema": schema})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing was fetched");
    server.abort();
    let (status, _) = send(app.get(&schema_path(&project, "sims"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
}

#[tokio::test]
async fn schema_bombs_are_refused_with_a_422_naming_the_problem() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    let mut deep = json!({"type": "object"});
    // 41 levels: deeper than the schema limit (32), within what a JSON body may nest.
    for _ in 0..20 {
        deep = json!({"properties": {"a": deep}});
    }
    let mut defs = serde_json::Map::new();
    for level in 0..10 {
        let next = json!({"$ref": format!("#/$defs/d{}", level + 1)});
        defs.insert(format!("d{level}"), json!({"anyOf": vec![next; 8]}));
    }
    defs.insert("d10".into(), json!({"type": "string"}));
    let exponential = json!({"$defs": defs, "$ref": "#/$defs/d0"});
    let looping = json!({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}},
                         "$ref": "#/$defs/a"});
    let huge = json!({"enum": vec!["x".repeat(1000); 100]});
    let cases = [
        (deep, "schema_too_deep"),
        (exponential, "schema_too_complex"),
        (looping, "schema_loops"),
        (json!({"pattern": "(a{1000}){1000}"}), "invalid_schema"),
        (json!({"pattern": "(unclosed"}), "invalid_schema"),
        (json!({"type": 12}), "invalid_schema"),
        (huge, "schema_too_large"),
    ];
    for (schema, code) in cases {
        let started = std::time::Instant::now();
        let (status, problem) = put_schema(
            &app,
            &project,
            "ellipsometry",
            json!({"mode": "report", "schema": schema}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{code}: {problem}"
        );
        assert_eq!(problem["code"], code, "{problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{code} was bounded"
        );
    }
    // A pattern that backtracking engines take exponential time on is linear here.
    put_schema(
        &app,
        &project,
        "ellipsometry",
        json!({"mode": "enforce", "schema": {"properties": {"s": {"pattern": "^(a+)+$"}}}}),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, _) = send(app.request(Method::POST, "/data_entries").json(&json!({
        "raw_name": "x", "char_source_type": "ellipsometry", "project_id": project,
        "metadata": {"s": format!("{}!", "a".repeat(5000))}
    })))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn only_admins_change_schemas_and_outsiders_learn_nothing() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    put_schema(&app, &project, "sem", growth_schema("enforce")).await;
    let editor = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let viewer = app.key_for("carol", &[Scope::Read, Scope::Write]).await;
    let outsider = app.key_for("dave", &[Scope::Read, Scope::Write]).await;
    for (user, role) in [("bob", "editor"), ("carol", "viewer")] {
        let (status, _) = send(
            app.request(Method::PUT, &format!("/projects/{project}/members/{user}"))
                .json(&json!({"role": role})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let path = schema_path(&project, "sem");
    let body = growth_schema("report");
    for (key, expected) in [
        (&editor, StatusCode::FORBIDDEN),
        (&viewer, StatusCode::FORBIDDEN),
        (&outsider, StatusCode::NOT_FOUND),
    ] {
        let (status, _) = send(app.request_as(key, Method::PUT, &path).json(&body)).await;
        assert_eq!(status, expected);
        let (status, _) = send(app.request_as(key, Method::DELETE, &path)).await;
        assert_eq!(status, expected);
        let (status, _) = send(
            app.request_as(key, Method::POST, &format!("{path}/check"))
                .json(&body),
        )
        .await;
        assert_eq!(status, expected);
    }
    // Members read it; an outsider gets the same 404 as for a project that does not exist.
    let (status, schema) = send(app.request_as(&viewer, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(schema["version"], 1, "unchanged");
    let (status, outsider_sees) = send(app.request_as(&outsider, Method::GET, &path)).await;
    let missing = schema_path(&uuid::Uuid::new_v4().to_string(), "sem");
    let (missing_status, missing_sees) =
        send(app.request_as(&outsider, Method::GET, &missing)).await;
    assert_eq!(
        (status, missing_status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(outsider_sees["code"], missing_sees["code"]);
    // A read-only key of the admin cannot change it either.
    let read_only = app.key_for("alice", &[Scope::Read]).await;
    let (status, _) = send(app.request_as(&read_only, Method::PUT, &path).json(&body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(app.get(&schema_path(&project, "nonsense"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_dry_run_counts_failing_entries_lists_the_first_twenty_and_stores_nothing() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    app.seed(&format!(
        "INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, metadata,
                                   project_id)
         SELECT gen_random_uuid(), $1, 'seeded', 'optical',
                jsonb_build_object('gain', CASE WHEN n <= 25 THEN 'high' ELSE '3' END),
                '{project}'
         FROM generate_series(1, 30) AS n"
    ))
    .await;
    let candidate = json!({"schema": {"properties": {"gain": {"pattern": "^[0-9]+$"}}}});
    let (status, answer) = send(
        app.request(
            Method::POST,
            &format!("{}/check", schema_path(&project, "optical")),
        )
        .json(&candidate),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["checked"], 30);
    assert_eq!(answer["failing"], 25);
    let listed = answer["first_failing"].as_array().unwrap();
    assert_eq!(listed.len(), 20);
    assert_eq!(listed[0]["errors"][0]["path"], "/gain");
    assert_eq!(listed[0]["errors"][0]["keyword"], "pattern");

    let (status, _) = send(app.get(&schema_path(&project, "optical"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");
    let (_, flagged) = send(app.get("/data_entries?metadata_valid=false")).await;
    assert_eq!(flagged, json!([]), "no entry flagged");
}

#[tokio::test]
async fn v2_answers_a_refused_write_with_a_400_naming_the_failing_paths() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    put_schema(&app, &project, "metrology", growth_schema("enforce")).await;
    let id = app
        .create_entry_id(
            json!({"char_source_type": "metrology", "project_id": project,
                                "metadata": {"temperature": {"value": 1, "unit": "K"}}}),
        )
        .await;
    let (status, body) = send(
        app.anonymous(Method::PATCH, &format!("/v2/files/{id}/metadata"))
            .header("X-SBG-Auth-Token", &app.api_key)
            .json(&json!({"thickness_nm": -3, "temperature": null})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 5006, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("metadata/thickness_nm"), "{message}");
    assert!(message.contains("temperature"), "{message}");
    assert_eq!(
        entry(&app, &id).await["metadata"],
        json!({"temperature": {"value": 1, "unit": "K"}})
    );
}

/// A schema a merge can be decided under from its patch alone: `operator` required, a
/// `stage` object that needs its `step`, numbers elsewhere.
fn decomposable_schema(mode: &str) -> Value {
    json!({
        "mode": mode,
        "schema": {
            "type": "object",
            "required": ["operator"],
            "properties": {
                "operator": {"type": "string"},
                "counter": {"type": "integer", "minimum": 0},
                "stage": {"type": "object", "required": ["step"],
                          "properties": {"step": {"type": "integer", "maximum": 6}}},
                "thickness_nm": {"type": "number", "maximum": 10}
            }
        }
    })
}

/// `labcat_schema_checked_writes_total{check}`: writes checked in full, by the shortcut.
async fn checked_writes(app: &TestApp) -> (f64, f64) {
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    let text = response.text().await.unwrap();
    let count = |check: &str| {
        metric_value(
            &text,
            &format!("labcat_schema_checked_writes_total{{check=\"{check}\"}}"),
        )
    };
    (count("full"), count("shortcut"))
}

/// Sends a PATCH and returns status, ETag and body.
async fn patch_with_etag(
    app: &TestApp,
    key: &str,
    path: &str,
    body: &Value,
    if_match: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut request = app.request_as(key, Method::PATCH, path).json(body);
    if let Some(revision) = if_match {
        request = request.header("If-Match", revision);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|etag| etag.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_patch_deleting_a_required_key_is_refused_with_its_path_after_writes_took_the_shortcut() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    put_schema(&app, &project, "xps", decomposable_schema("enforce")).await;
    let id = app
        .create_entry_id(json!({"char_source_type": "xps", "project_id": project,
                                "metadata": {"operator": "ada"}}))
        .await;
    let path = format!("/data_entries/{id}");
    for counter in 1..=3 {
        let (status, body) =
            send(app.patch_json(&path, &json!({"metadata": {"counter": counter}}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, shortcut) = checked_writes(&app).await;
    assert!(shortcut >= 2.0, "the later merges took the shortcut");

    let (status, problem) = send(app.patch_json(
        &path,
        &json!({"raw_name": "x.vms", "metadata": {"operator": null}}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        violations_at(&problem),
        [("".to_owned(), "required".to_owned())]
    );
    let after = entry(&app, &id).await;
    assert_eq!(after["revision"], 4);
    assert_eq!(after["metadata"], json!({"operator": "ada", "counter": 3}));
}

#[tokio::test]
async fn a_nested_object_without_its_required_member_is_refused_when_the_stored_document_lacks_it()
{
    let app = spawn_app().await;
    let project = new_project(&app).await;
    put_schema(&app, &project, "xps", decomposable_schema("enforce")).await;
    let id = app
        .create_entry_id(json!({"char_source_type": "xps", "project_id": project,
                                "metadata": {"operator": "ada"}}))
        .await;
    let path = format!("/data_entries/{id}/metadata");
    for counter in 1..=2 {
        let (status, body) = send(app.patch_json(&path, &json!({"counter": counter}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // No stage stored: the merged stage would be `{"note": "x"}`, without its step.
    let (status, problem) = send(app.patch_json(&path, &json!({"stage": {"note": "x"}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        violations_at(&problem),
        [("/stage".to_owned(), "required".to_owned())]
    );
    assert_eq!(
        entry(&app, &id).await["metadata"],
        json!({"operator": "ada", "counter": 2})
    );
    // With a stage stored, the same merge keeps its step and is fine.
    let (status, body) = send(app.patch_json(&path, &json!({"stage": {"step": 2}}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(app.patch_json(&path, &json!({"stage": {"note": "x"}}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stage"], json!({"step": 2, "note": "x"}));
    assert_eq!(entry(&app, &id).await["metadata_valid"], true);
}

#[tokio::test]
async fn a_schema_put_between_writes_makes_the_next_write_check_the_stored_document_again() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    put_schema(&app, &project, "xps", decomposable_schema("report")).await;
    let id = app
        .create_entry_id(json!({"char_source_type": "xps", "project_id": project,
                                "metadata": {"operator": "ada", "thickness_nm": 8}}))
        .await;
    let path = format!("/data_entries/{id}");
    for counter in 1..=2 {
        let (_, body) =
            send(app.patch_json(&path, &json!({"metadata": {"counter": counter}}))).await;
        assert_eq!(body["metadata_valid"], true, "{body}");
    }
    let (_, shortcut_before) = checked_writes(&app).await;
    assert!(shortcut_before >= 1.0);

    // Version 2 allows at most 4 nm: the stored 8 no longer fits. The next write checks the
    // stored document whether or not the background recheck has reached the entry yet.
    let mut stricter = decomposable_schema("report");
    stricter["schema"]["properties"]["thickness_nm"]["maximum"] = json!(4);
    let (status, answer) = put_schema(&app, &project, "xps", stricter).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for counter in 3..=5 {
        let (status, body) =
            send(app.patch_json(&path, &json!({"metadata": {"counter": counter}}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["metadata_valid"], false, "{body}");
        assert_eq!(
            violations_at(&json!({"errors": body["metadata_errors"]})),
            [("/thickness_nm".to_owned(), "maximum".to_owned())]
        );
    }
    wait_for_flags(&app, std::slice::from_ref(&id), &[json!(false)]).await;
    // Still flagged after the recheck, until a write fixes it; then the shortcut again.
    let (_, body) = send(app.patch_json(&path, &json!({"metadata": {"counter": 6}}))).await;
    assert_eq!(body["metadata_valid"], false, "{body}");
    let (_, body) = send(app.patch_json(&path, &json!({"metadata": {"thickness_nm": 3}}))).await;
    assert_eq!(body["metadata_valid"], true, "{body}");
    assert_eq!(body["metadata_errors"], json!([]));
    let (_, shortcut_fixed) = checked_writes(&app).await;
    let (_, body) = send(app.patch_json(&path, &json!({"metadata": {"counter": 7}}))).await;
    assert_eq!(body["metadata_valid"], true, "{body}");
    let (_, shortcut_after) = checked_writes(&app).await;
    assert_eq!(shortcut_after, shortcut_fixed + 1.0);
    // Every change names the version it was checked against.
    let (_, history) = send(app.get(&format!("/data_entries/{id}/history"))).await;
    let versions: Vec<Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["schema"]["version"].clone())
        .collect();
    assert_eq!(
        versions,
        [2, 2, 2, 2, 2, 2, 1, 1, 1].map(|version| json!(version))
    );
}

/// An answer or history record without what differs between two entries.
fn without_identity(mut value: Value) -> Value {
    if let Some(members) = value.as_object_mut() {
        for name in [
            "data_id",
            "upload_datetime",
            "last_updated",
            "changed_at",
            "request_id",
        ] {
            members.remove(name);
        }
    }
    value
}

#[tokio::test]
async fn the_shortcut_answers_exactly_like_the_full_check() {
    let app = spawn_app().await;
    let project = new_project(&app).await;
    put_schema(&app, &project, "xps", decomposable_schema("enforce")).await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let (status, _) = send(
        app.request(Method::PUT, &format!("/projects/{project}/members/bob"))
            .json(&json!({"role": "editor"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let created = json!({"char_source_type": "xps", "project_id": project,
                         "metadata": {"operator": "ada", "stage": {"step": 1}}});
    let first = app.create_entry_id(created.clone()).await;
    let second = app.create_entry_id(created).await;

    // Bob's first write meets the schema and is checked in full; his second, the same
    // change to an entry alike, is decided from the patch.
    let change = json!({"pipeline_status": "success",
                        "metadata": {"counter": 4, "stage": {"step": 5}, "thickness_nm": null}});
    let mut answers = Vec::new();
    for (id, expected) in [(&first, (1.0, 0.0)), (&second, (1.0, 1.0))] {
        let path = format!("/data_entries/{id}");
        let (status, etag, body) = patch_with_etag(&app, &bob, &path, &change, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(checked_writes(&app).await, expected);
        // A stale If-Match is a 412 with the current ETag either way.
        let (stale, stale_etag, problem) =
            patch_with_etag(&app, &bob, &path, &change, Some("\"1\"")).await;
        assert_eq!(stale, StatusCode::PRECONDITION_FAILED, "{problem}");
        // The update's history record (the create's names the entry's own id).
        let (_, history) = send(app.get(&format!("{path}/history"))).await;
        assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
        let update = without_identity(history[0].clone());
        answers.push((etag, without_identity(body), stale_etag, update));
    }
    assert_eq!(answers[0], answers[1]);
    let (etag, body, stale_etag, update) = &answers[0];
    assert_eq!(etag, "\"2\"");
    assert_eq!(stale_etag, "\"2\"");
    assert_eq!(body["metadata_valid"], true);
    assert_eq!(
        body["metadata"],
        json!({"operator": "ada", "counter": 4, "stage": {"step": 5}})
    );
    assert_eq!(
        update["schema"],
        json!({"char_source_type": "xps", "version": 1})
    );
    assert_eq!(
        update["changes"]["metadata"]["stage"],
        json!({"before": {"step": 1}, "after": {"step": 5}})
    );

    // An idempotent retry of a shortcut write is answered again, not written again.
    let path = format!("/data_entries/{second}");
    let retry = || {
        app.request_as(&bob, Method::PATCH, &path)
            .header("Idempotency-Key", "once")
            .json(&json!({"metadata": {"counter": 9}}))
    };
    let (status, first_answer) = send(retry()).await;
    assert_eq!(status, StatusCode::OK, "{first_answer}");
    let replayed = retry().send().await.unwrap();
    assert_eq!(replayed.headers()["idempotency-replayed"], "true");
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(replayed, first_answer);
    assert_eq!(entry(&app, &second).await["revision"], 3);
}
