//! `GET /metadata/keys` and `GET /data_entries/facets`: what the entries a caller may read
//! hold, and nothing the caller may not read.

use labcat::domain::Scope;
use labcat::domain::metadata_query::write_path;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, send, spawn_app};

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn keys_as(app: &TestApp, key: &str, query: &str) -> Value {
    let path = format!("/metadata/keys?{query}");
    let (status, keys) = send(app.request_as(key, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{query}: {keys}");
    keys
}

async fn keys(app: &TestApp, query: &str) -> Value {
    keys_as(app, &app.api_key, query).await
}

/// Only the paths of an answer of `/metadata/keys`.
fn paths(keys: &Value) -> Vec<String> {
    keys.as_array()
        .unwrap()
        .iter()
        .map(|key| key["path"].as_str().unwrap().to_owned())
        .collect()
}

async fn facets_as(app: &TestApp, key: &str, query: &str) -> Value {
    let path = format!("/data_entries/facets?{query}");
    let (status, facets) = send(app.request_as(key, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{query}: {facets}");
    facets
}

async fn facets(app: &TestApp, query: &str) -> Value {
    facets_as(app, &app.api_key, query).await
}

async fn create_project(app: &TestApp, key: &str, name: &str) -> String {
    let (status, project) = send(
        app.request_as(key, Method::POST, "/projects")
            .json(&json!({"name": name})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    project["project_id"].as_str().unwrap().to_owned()
}

async fn create_entry_as(app: &TestApp, key: &str, body: Value) -> String {
    let (status, entry) = send(
        app.request_as(key, Method::POST, "/data_entries")
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    id_of(&entry)
}

async fn seed_instruments(app: &TestApp) {
    for (name, kind, metadata) in [
        (
            "phi.vms",
            "xps",
            json!({"instrument": {"name": "PHI", "settings": {"pass_energy": 20}},
                   "temperature": {"value": 700, "unit": "degC"}, "tags": ["a", "b", "c"],
                   "flag": true, "empty": {}, "none": null}),
        ),
        (
            "kratos.vms",
            "xps",
            json!({"instrument": {"name": "Kratos", "settings": {"pass_energy": "high"}},
                   "temperature": {"value": 1000, "unit": "K"}, "tags": [], "flag": false}),
        ),
        (
            "sem.tif",
            "sem",
            json!({"instrument": {"name": "PHI"}, "temperature": 650, "readings": [1, 2, 3]}),
        ),
    ] {
        app.create_entry(json!({"raw_name": name, "char_source_type": kind, "metadata": metadata}))
            .await;
    }
}

#[tokio::test]
async fn key_discovery_lists_each_path_with_its_entries_types_and_units() {
    let app = spawn_app().await;
    seed_instruments(&app).await;
    assert_eq!(
        keys(&app, "").await,
        json!([
            {"path": "instrument.name", "count": 3, "types": {"string": 3}},
            // A quantity is one key (not its value and unit), with the units it is in.
            {"path": "temperature", "count": 3, "types": {"number": 1, "quantity": 2},
             "units": {"K": 1, "degC": 1}},
            {"path": "flag", "count": 2, "types": {"boolean": 2}},
            {"path": "instrument.settings.pass_energy", "count": 2,
             "types": {"string": 1, "number": 1}},
            // Three strings in one entry count once; an empty array is a value of its own.
            {"path": "tags", "count": 2, "types": {"string": 1, "array": 1}},
            {"path": "empty", "count": 1, "types": {"object": 1}},
            {"path": "none", "count": 1, "types": {"null": 1}},
            {"path": "readings", "count": 1, "types": {"number": 1}},
        ])
    );
}

#[tokio::test]
async fn key_discovery_is_narrowed_by_prefix_project_and_type() {
    let app = spawn_app().await;
    seed_instruments(&app).await;
    let project = create_project(&app, &app.api_key, "raman lab").await;
    app.create_entry(json!({"char_source_type": "raman", "project_id": project,
                            "metadata": {"laser": {"wavelength": 532}, "pass.energy": 1}}))
        .await;

    assert_eq!(
        paths(&keys(&app, "prefix=instrument.").await),
        ["instrument.name", "instrument.settings.pass_energy"]
    );
    assert_eq!(
        paths(&keys(&app, "prefix=instrument.sett").await),
        ["instrument.settings.pass_energy"]
    );
    // The prefix is of the written form: an escaped dot is written `\.`.
    assert_eq!(
        paths(&keys(&app, &format!("prefix={}", enc(r"pass\."))).await),
        [r"pass\.energy"]
    );
    assert_eq!(
        paths(&keys(&app, "prefix=nothing").await),
        Vec::<String>::new()
    );
    assert_eq!(
        paths(&keys(&app, &format!("project_id={project}")).await),
        ["laser.wavelength", r"pass\.energy"]
    );
    assert_eq!(
        paths(&keys(&app, "char_source_type=sem").await),
        ["instrument.name", "readings", "temperature"]
    );
    let narrowed = keys(&app, "char_source_type=xps&prefix=temp").await;
    assert_eq!(
        narrowed,
        json!([{"path": "temperature", "count": 2, "types": {"quantity": 2},
                "units": {"K": 1, "degC": 1}}])
    );
}

#[tokio::test]
async fn discovered_paths_are_written_as_filters_and_facets_take_them() {
    let app = spawn_app().await;
    let odd: Vec<Vec<&str>> = vec![
        vec!["pass.energy"],
        vec!["a[0]", r"b\c"],
        vec!["größe", "ключ"],
        vec![r#"it's "quoted"; DROP TABLE data_entries; --"#],
    ];
    app.create_entry(json!({"raw_name": "odd", "metadata": {
        "pass.energy": 5,
        "a[0]": {r"b\c": "x"},
        "größe": {"ключ": true},
        r#"it's "quoted"; DROP TABLE data_entries; --"#: "' OR '1'='1",
    }}))
    .await;
    app.create_entry(json!({"raw_name": "plain", "metadata": {"pass": {"energy": 7}}}))
        .await;
    let listed = paths(&keys(&app, "").await);
    for keys in &odd {
        let written = write_path(keys);
        assert!(listed.contains(&written), "{written} in {listed:?}");
        // Pasted into a filter, the path finds the entry it came from and no other.
        let (status, found) = send(app.get(&format!(
            "/data_entries?metadata.{}[exists]=true",
            enc(&written)
        )))
        .await;
        assert_eq!(status, StatusCode::OK, "{written}: {found}");
        assert_eq!(found.as_array().unwrap().len(), 1, "{written}");
        assert_eq!(found[0]["raw_name"], "odd", "{written}");
        let facet = format!("metadata.{written}");
        let counted = facets(&app, &format!("facet={}", enc(&facet))).await;
        assert_eq!(
            counted[&facet].as_array().unwrap().len(),
            1,
            "{facet}: {counted}"
        );
        assert_eq!(counted[&facet][0]["count"], 1, "{facet}");
    }
    assert!(listed.contains(&"pass.energy".to_owned()));
    let counted = facets(&app, "facet=metadata.pass.energy").await;
    assert_eq!(
        counted,
        json!({"metadata.pass.energy": [{"value": 7, "count": 1}]})
    );
}

#[tokio::test]
async fn bad_discovery_parameters_are_the_problems_search_gives_and_never_a_500() {
    let app = spawn_app().await;
    let nul = "%00";
    for (query, status, field, code) in [
        (
            "char_source_type=tea",
            422,
            "char_source_type",
            "invalid_enum_value",
        ),
        ("project_id=nope", 422, "project_id", "invalid_value"),
        ("limit=5", 422, "limit", "unknown_parameter"),
        (&*format!("prefix=a{nul}"), 422, "prefix", "invalid_value"),
        ("prefix=a&prefix=b", 422, "prefix", "invalid_value"),
    ] {
        let (got, problem) = send(app.get(&format!("/metadata/keys?{query}"))).await;
        assert_eq!(got.as_u16(), status, "{query}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
        assert_eq!(problem["code"], code, "{query}: {problem}");
    }
    let (_, problem) = send(app.get("/metadata/keys?char_source_type=tea")).await;
    assert_eq!(
        problem["errors"][0]["allowed_values"],
        json!(labcat::domain::CharSourceType::NAMES)
    );
    // The same as search answers for a data type it does not know.
    let (status, search) = send(app.get("/data_entries?data_type=tea")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(search["code"], problem["code"]);

    for (query, status, field, code) in [
        ("", 400, "facet", "missing_field"),
        ("status=success", 400, "facet", "missing_field"),
        ("facet=raw_name", 400, "facet", "invalid_value"),
        ("facet=metadata.a..b", 400, "facet", "invalid_value"),
        ("facet=metadata.a%5Bgt%5D", 400, "facet", "invalid_value"),
        (
            &*format!("facet=metadata.a{nul}"),
            400,
            "facet",
            "invalid_value",
        ),
        (
            "facet=project_id&metadata.t%5Bnear%5D=1",
            400,
            "metadata.t[near]",
            "invalid_enum_value",
        ),
        (
            "facet=project_id&limit=10",
            422,
            "limit",
            "unknown_parameter",
        ),
        (
            "facet=project_id&cursor=abc",
            422,
            "cursor",
            "unknown_parameter",
        ),
        (
            "facet=project_id&order_by=last_updated",
            422,
            "order_by",
            "unknown_parameter",
        ),
        (
            "facet=project_id&data_type=tea",
            422,
            "data_type",
            "invalid_enum_value",
        ),
        (
            "facet=project_id&nonsense=1",
            422,
            "nonsense",
            "unknown_parameter",
        ),
    ] {
        let (got, problem) = send(app.get(&format!("/data_entries/facets?{query}"))).await;
        assert_eq!(got.as_u16(), status, "{query}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
        assert_eq!(problem["code"], code, "{query}: {problem}");
    }
    let eleven: Vec<String> = (0..11).map(|i| format!("facet=metadata.k{i}")).collect();
    let (status, problem) =
        send(app.get(&format!("/data_entries/facets?{}", eleven.join("&")))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "too_many_values");
    // Ten distinct facets are fine, however often each is repeated.
    let mut ten: Vec<String> = (0..10).map(|i| format!("facet=metadata.k{i}")).collect();
    ten.extend(ten.clone());
    let counted = facets(&app, &ten.join("&")).await;
    assert_eq!(counted.as_object().unwrap().len(), 10);
}

#[tokio::test]
async fn facets_count_entries_per_value_most_frequent_first_and_ties_by_value() {
    let app = spawn_app().await;
    for (kind, status, operator) in [
        ("xps", "success", "alice"),
        ("xps", "success", "bob"),
        ("xps", "error", "alice"),
        ("sem", "pending", "carol"),
        ("sem", "success", "alice"),
        ("raman", "running", "bob"),
    ] {
        app.create_entry(json!({"char_source_type": kind, "pipeline_status": status,
                                "metadata": {"operator": operator}}))
            .await;
    }
    app.create_entry(json!({"char_source_type": "afm"})).await;
    let counted = facets(
        &app,
        "facet=char_source_type&facet=metadata.operator&facet=pipeline_status&facet=physical_sample_id",
    )
    .await;
    assert_eq!(
        counted,
        json!({
            "char_source_type": [
                {"value": "xps", "count": 3}, {"value": "sem", "count": 2},
                {"value": "afm", "count": 1}, {"value": "raman", "count": 1},
            ],
            // The entry without an operator is not counted.
            "metadata.operator": [
                {"value": "alice", "count": 3}, {"value": "bob", "count": 2},
                {"value": "carol", "count": 1},
            ],
            "pipeline_status": [
                // The entry made without a status is pending.
                {"value": "success", "count": 3}, {"value": "pending", "count": 2},
                {"value": "error", "count": 1}, {"value": "running", "count": 1},
            ],
            "physical_sample_id": [],
        })
    );
    // The answer lists the facets in the order they were asked for.
    let keys: Vec<&String> = counted.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "char_source_type",
            "metadata.operator",
            "pipeline_status",
            "physical_sample_id"
        ]
    );
}

#[tokio::test]
async fn facets_count_only_what_the_same_search_filters_find() {
    let app = spawn_app().await;
    for (name, kind, metadata) in [
        (
            "GaN_1.vms",
            "xps",
            json!({"temperature": 750, "operator": "alice"}),
        ),
        (
            "GaN_2.vms",
            "xps",
            json!({"temperature": 650, "operator": "bob"}),
        ),
        (
            "GaN_3.tif",
            "sem",
            json!({"temperature": 800, "operator": "bob"}),
        ),
        (
            "SrTiO3.vms",
            "xps",
            json!({"temperature": 900, "operator": "carol"}),
        ),
    ] {
        app.create_entry(json!({"raw_name": name, "char_source_type": kind, "metadata": metadata}))
            .await;
    }
    let facet = "facet=metadata.operator";
    assert_eq!(
        facets(&app, &format!("{facet}&metadata.temperature%5Bgt%5D=700")).await,
        json!({"metadata.operator": [
            {"value": "alice", "count": 1}, {"value": "bob", "count": 1},
            {"value": "carol", "count": 1},
        ]})
    );
    assert_eq!(
        facets(&app, &format!("{facet}&q=GaN")).await,
        json!({"metadata.operator": [{"value": "bob", "count": 2}, {"value": "alice", "count": 1}]})
    );
    assert_eq!(
        facets(
            &app,
            &format!("{facet}&q=GaN&data_type=xps&metadata.temperature%5Bgt%5D=700")
        )
        .await,
        json!({"metadata.operator": [{"value": "alice", "count": 1}]})
    );
    assert_eq!(
        facets(&app, &format!("{facet}&metadata.operator=nobody")).await,
        json!({"metadata.operator": []})
    );
    // Whatever the filters, a facet's counts are those of the entries search finds.
    let (_, found) = send(app.get("/data_entries?q=GaN&metadata.temperature%5Bgte%5D=750")).await;
    let counted = facets(
        &app,
        "facet=char_source_type&q=GaN&metadata.temperature%5Bgte%5D=750",
    )
    .await;
    let total: i64 = counted["char_source_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total as usize, found.as_array().unwrap().len());
}

#[tokio::test]
async fn an_array_counts_once_per_distinct_element_and_objects_count_as_they_are() {
    let app = spawn_app().await;
    app.create_entry(json!({"metadata": {
        "tags": ["gan", "mbe", "gan"],
        "runs": [{"operator": "alice"}, {"operator": "bob"}, {"operator": "alice"}],
        "temperature": {"value": 300, "unit": "K"},
    }}))
    .await;
    app.create_entry(json!({"metadata": {
        "tags": "gan",
        "runs": {"operator": "alice"},
        "temperature": {"value": 300, "unit": "K"},
    }}))
    .await;
    app.create_entry(json!({"metadata": {"tags": {"nested": 1}, "runs": 5}}))
        .await;
    assert_eq!(
        facets(
            &app,
            "facet=metadata.tags&facet=metadata.runs.operator&facet=metadata.temperature"
        )
        .await,
        json!({
            "metadata.tags": [
                {"value": "gan", "count": 2}, {"value": "mbe", "count": 1},
                {"value": {"nested": 1}, "count": 1},
            ],
            // Through the objects of an array on the way; a scalar on the way finds nothing.
            "metadata.runs.operator": [
                {"value": "alice", "count": 2}, {"value": "bob", "count": 1},
            ],
            "metadata.temperature": [{"value": {"value": 300, "unit": "K"}, "count": 2}],
        })
    );
}

#[tokio::test]
async fn a_facet_lists_its_fifty_most_frequent_values() {
    let app = spawn_app().await;
    let many: Vec<i64> = (0..60).collect();
    app.create_entry(json!({"metadata": {"n": many}})).await;
    app.create_entry(json!({"metadata": {"n": [59, 58]}})).await;
    app.create_entry(json!({"metadata": {"n": 59}})).await;
    let counted = facets(&app, "facet=metadata.n").await;
    let values = counted["metadata.n"].as_array().unwrap();
    assert_eq!(values.len(), 50);
    assert_eq!(values[0], json!({"value": 59, "count": 3}));
    assert_eq!(values[1], json!({"value": 58, "count": 2}));
    // Then the values held once, in order: 0, 1, …, 47.
    for (i, value) in values[2..].iter().enumerate() {
        assert_eq!(value, &json!({"value": i, "count": 1}));
    }
}

/// The important one: another project's entries change neither answer, and an entry
/// moved out of a project the caller reads stops counting at once.
#[tokio::test]
async fn discovery_and_facets_never_count_another_projects_entries() {
    let app = spawn_app().await;
    let rw = [Scope::Read, Scope::Write];
    let bob = app.key_for("bob", &rw).await;
    app.create_entry(json!({"char_source_type": "xps",
                            "metadata": {"operator": "alice", "temperature": 700}}))
        .await;
    let all_facets = "facet=char_source_type&facet=project_id&facet=metadata.operator\
                      &facet=metadata.secret";
    let alice_keys = keys(&app, "").await;
    let alice_facets = facets(&app, all_facets).await;

    // Bob's entries, in his personal project and in one of his own, which alice cannot
    // read: her answers do not move, not even when she names his project.
    let bobs = create_project(&app, &bob, "bob's").await;
    for project in [None, Some(&bobs)] {
        let mut body = json!({"raw_name": "b", "char_source_type": "sims",
                              "metadata": {"operator": "bob", "secret": {"key": 1},
                                           "temperature": {"value": 1, "unit": "K"}}});
        if let Some(project) = project {
            body["project_id"] = json!(project);
        }
        create_entry_as(&app, &bob, body).await;
    }
    assert_eq!(keys(&app, "").await, alice_keys);
    assert_eq!(facets(&app, all_facets).await, alice_facets);
    assert_eq!(keys(&app, &format!("project_id={bobs}")).await, json!([]));
    assert_eq!(
        facets(&app, &format!("{all_facets}&project_id={bobs}")).await,
        json!({"char_source_type": [], "project_id": [], "metadata.operator": [],
               "metadata.secret": []})
    );
    // Bob sees his own two, and not alice's.
    assert_eq!(
        keys_as(&app, &bob, "prefix=secret").await,
        json!([{"path": "secret.key", "count": 2, "types": {"number": 2}}])
    );
    let bob_facets = facets_as(&app, &bob, "facet=metadata.operator").await;
    assert_eq!(
        bob_facets,
        json!({"metadata.operator": [{"value": "bob", "count": 2}]})
    );

    // Alice shares a project with bob as a viewer: its entry counts for him...
    let shared = create_project(&app, &app.api_key, "shared").await;
    let path = format!("/projects/{shared}/members/bob");
    let (status, _) = send(
        app.request(Method::PUT, &path)
            .json(&json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let moved = app
        .create_entry_id(json!({"char_source_type": "raman", "project_id": shared,
                                "metadata": {"operator": "alice", "laser": 532}}))
        .await;
    assert_eq!(
        facets_as(&app, &bob, "facet=metadata.operator").await,
        json!({"metadata.operator": [{"value": "bob", "count": 2}, {"value": "alice", "count": 1}]})
    );
    assert_eq!(paths(&keys_as(&app, &bob, "prefix=laser").await), ["laser"]);
    // ...and a key of alice's limited to that project counts only it.
    let (status, limited) = send(app.request(Method::POST, "/api_keys").json(&json!({
        "name": "partner", "scopes": ["read"], "projects": [shared]
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{limited}");
    let limited = limited["key"].as_str().unwrap();
    assert_eq!(
        facets_as(&app, limited, "facet=char_source_type&facet=project_id").await,
        json!({"char_source_type": [{"value": "raman", "count": 1}],
               "project_id": [{"value": shared, "count": 1}]})
    );
    assert_eq!(
        paths(&keys_as(&app, limited, "").await),
        ["laser", "operator"]
    );

    // Moved out to alice's personal project, it stops counting for bob at once.
    let (_, projects) = send(app.get("/projects")).await;
    let personal = projects[0]["project_id"].as_str().unwrap().to_owned();
    let (status, entry) = send(app.patch_json(
        &format!("/data_entries/{moved}"),
        &json!({"project_id": personal}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(
        facets_as(&app, &bob, "facet=metadata.operator").await,
        bob_facets
    );
    assert_eq!(
        paths(&keys_as(&app, &bob, "prefix=laser").await),
        Vec::<String>::new()
    );
    assert_eq!(
        paths(&keys_as(&app, limited, "").await),
        Vec::<String>::new()
    );
}
