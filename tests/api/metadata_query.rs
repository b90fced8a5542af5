//! `metadata.<path>[<op>]=<value>` on `GET /data_entries`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app};

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let (status, found) =
        send(app.get(&format!("/data_entries?{query}&order_by=upload_datetime"))).await;
    assert_eq!(status, StatusCode::OK, "{query}: {found}");
    let mut names: Vec<String> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["raw_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn seed(app: &TestApp) -> Vec<Value> {
    let documents = [
        (
            "hot",
            json!({"instrument": {"name": "PHI", "settings": {"pass_energy": 20}}, "temperature": 750, "tags": ["gan", "mbe"], "operator": "Kim"}),
        ),
        (
            "warm",
            json!({"instrument": {"name": "Kratos", "settings": {"pass_energy": 40}}, "temperature": 9, "tags": ["sto"], "operator": "kimura"}),
        ),
        (
            "cold",
            json!({"instrument": {"name": "PHI", "settings": {"pass_energy": 10}}, "temperature": "n/a", "pass.energy": 5}),
        ),
    ];
    let mut stored = Vec::new();
    for (name, metadata) in documents {
        let entry = app
            .create_entry(json!({"raw_name": name, "metadata": metadata}))
            .await;
        stored.push(entry["metadata"].clone());
    }
    stored
}

#[tokio::test]
async fn comparisons_on_nested_paths_are_typed_and_and_together() {
    let app = spawn_app().await;
    seed(&app).await;
    // Numbers compare as numbers (9 < 10), never with a string ("n/a").
    assert_eq!(names(&app, "metadata.temperature[gt]=10").await, ["hot"]);
    assert_eq!(names(&app, "metadata.temperature[lt]=10").await, ["warm"]);
    assert_eq!(
        names(&app, "metadata.temperature[gte]=9").await,
        ["hot", "warm"]
    );
    assert_eq!(names(&app, "metadata.temperature[lte]=9").await, ["warm"]);
    assert_eq!(
        names(&app, "metadata.instrument.settings.pass_energy[eq]=20").await,
        ["hot"]
    );
    assert_eq!(
        names(&app, "metadata.instrument.settings.pass_energy[ne]=20").await,
        ["cold", "warm"]
    );
    assert_eq!(
        names(&app, "metadata.instrument.settings.pass_energy[in]=10,40").await,
        ["cold", "warm"]
    );
    // Strings compare as strings.
    assert_eq!(
        names(&app, "metadata.instrument.name[gt]=PHI").await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app, "metadata.instrument.name[lt]=PHI").await,
        ["warm"]
    );
    // Several AND together; equality on a nested path as before.
    assert_eq!(
        names(
            &app,
            "metadata.instrument.name=PHI&metadata.temperature[gte]=700"
        )
        .await,
        ["hot"]
    );
    assert_eq!(
        names(&app, "metadata.instrument.name=PHI").await,
        ["cold", "hot"]
    );
}

#[tokio::test]
async fn arrays_match_by_any_element_and_text_operators_ignore_case() {
    let app = spawn_app().await;
    seed(&app).await;
    assert_eq!(names(&app, "metadata.tags=mbe").await, ["hot"]);
    assert_eq!(names(&app, "metadata.tags[in]=sto,xyz").await, ["warm"]);
    assert_eq!(
        names(&app, "metadata.tags[exists]=true").await,
        ["hot", "warm"]
    );
    assert_eq!(names(&app, "metadata.tags[exists]=false").await, ["cold"]);
    assert_eq!(
        names(&app, "metadata.operator[prefix]=KIM").await,
        ["hot", "warm"]
    );
    assert_eq!(
        names(&app, "metadata.operator[contains]=MUR").await,
        ["warm"]
    );
    // Pattern characters are literal.
    assert_eq!(
        names(&app, &format!("metadata.operator[contains]={}", enc(".*"))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app, &format!("metadata.temperature[prefix]={}", enc("n/"))).await,
        ["cold"]
    );
}

#[tokio::test]
async fn keys_with_dots_quotes_unicode_and_sql_are_matched_literally() {
    let app = spawn_app().await;
    let stored = seed(&app).await;
    assert_eq!(
        names(&app, &format!("metadata.{}[eq]=5", enc(r"pass\.energy"))).await,
        ["cold"]
    );
    app.create_entry(json!({"raw_name": "odd", "metadata": {
        "it's \"quoted\"": {"ключ": "x' OR '1'='1"}
    }}))
    .await;
    let path = enc(r#"it's "quoted".ключ"#);
    assert_eq!(
        names(
            &app,
            &format!("metadata.{path}[eq]={}", enc("x' OR '1'='1"))
        )
        .await,
        ["odd"]
    );
    assert_eq!(
        names(
            &app,
            &format!("metadata.{path}[contains]={}", enc("' OR '"))
        )
        .await,
        ["odd"]
    );
    // The stored documents come back exactly as written.
    let (_, all) = send(app.get("/data_entries?order_by=upload_datetime")).await;
    for (entry, written) in all.as_array().unwrap().iter().zip(&stored) {
        assert_eq!(&entry["metadata"], written);
    }
}

#[tokio::test]
async fn a_malformed_metadata_filter_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    for query in [
        "metadata.temperature[near]=1",
        "metadata.temperature[exists]=maybe",
        "metadata.a..b[eq]=1",
        "metadata.a%5Cb[eq]=1",
        "metadata.[eq]=1",
        "metadata.t%5Bgt=1",
        "metadata.t%5Bgt%5D%5Blt%5D=1",
        "metadata.a%5D=1",
    ] {
        let (status, problem) = send(app.get(&format!("/data_entries?{query}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        assert!(
            problem["errors"][0]["field"]
                .as_str()
                .unwrap()
                .starts_with("metadata."),
            "{query}: {problem}"
        );
    }
}

#[tokio::test]
async fn q_finds_every_word_in_the_name_or_any_metadata_string_as_written() {
    let app = spawn_app().await;
    app.create_entry(json!({"raw_name": "GaN_buffer.mp4", "metadata": {
        "substrate": {"material": "SrTiO3"}, "notes": ["first 100% run", "ok"]
    }}))
    .await;
    app.create_entry(
        json!({"raw_name": "gallium.vms", "metadata": {"material": "GaAs", "n": 100}}),
    )
    .await;
    assert_eq!(names(&app, "q=gan").await, ["GaN_buffer.mp4"]);
    assert_eq!(names(&app, "q=srtio3").await, ["GaN_buffer.mp4"]);
    assert_eq!(names(&app, "q=GaN+SrTiO3").await, ["GaN_buffer.mp4"]);
    assert_eq!(names(&app, "q=GaN+GaAs").await, Vec::<String>::new());
    assert_eq!(names(&app, "q=ga").await, ["GaN_buffer.mp4", "gallium.vms"]);
    // Strings only, and wildcards are literal: the number 100 is no text, "100%" is.
    assert_eq!(
        names(&app, &format!("q={}", enc("100%"))).await,
        ["GaN_buffer.mp4"]
    );
    assert_eq!(names(&app, "q=100").await, ["GaN_buffer.mp4"]);
}
