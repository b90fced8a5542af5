//! `metadata.<path>[<op>]=<value>` on `GET /data_entries`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app, spawn_app_with};

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
async fn q_finds_entries_with_words_starting_with_every_word_in_the_name_or_metadata_strings() {
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
    // Words inside a name split at punctuation; a word matches the start of a word.
    assert_eq!(names(&app, "q=buffer").await, ["GaN_buffer.mp4"]);
    assert_eq!(names(&app, "q=uffer").await, Vec::<String>::new());
    assert_eq!(names(&app, "q=gallium.vms").await, ["gallium.vms"]);
    let (status, problem) = send(app.get(&format!("/data_entries?q={}", enc("GaN %")))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "q");
}

#[tokio::test]
async fn timestamps_compare_as_instants_and_booleans_as_booleans() {
    let app = spawn_app().await;
    for (name, started, calibrated) in [
        ("early", "2025-01-01T09:00:00Z", true),
        ("late", "2025-01-01T12:30:00+02:00", false),
        ("text", "yesterday", true),
    ] {
        app.create_entry(json!({"raw_name": name, "metadata": {
            "run": {"started": started, "calibrated": calibrated}
        }}))
        .await;
    }
    // 10:30 UTC is after 09:00 UTC, though "12:30" reads later and "09" earlier as text.
    let at = |op: &str, instant: &str| format!("metadata.run.started[{op}]={}", enc(instant));
    assert_eq!(
        names(&app, &at("gt", "2025-01-01T10:00:00Z")).await,
        ["late"]
    );
    assert_eq!(
        names(&app, &at("lt", "2025-01-01T10:00:00Z")).await,
        ["early"]
    );
    assert_eq!(
        names(&app, &at("eq", "2025-01-01T10:00:00+01:00")).await,
        ["early"]
    );
    assert_eq!(
        names(&app, &at("gte", "2025-01-01T09:00:00Z")).await,
        ["early", "late"]
    );
    assert_eq!(
        names(&app, &at("ne", "2025-01-01T09:00:00Z")).await,
        ["late"]
    );
    assert_eq!(
        names(&app, "metadata.run.calibrated[eq]=true").await,
        ["early", "text"]
    );
    assert_eq!(
        names(&app, "metadata.run.calibrated[ne]=true").await,
        ["late"]
    );
    assert_eq!(
        names(&app, "metadata.run.calibrated[in]=false,maybe").await,
        ["late"]
    );
    assert_eq!(
        names(&app, "metadata.run[exists]=true").await,
        ["early", "late", "text"]
    );
    assert_eq!(
        names(&app, "metadata.run.stopped[exists]=false").await,
        ["early", "late", "text"]
    );
}

#[tokio::test]
async fn quantities_compare_in_si_across_units_and_come_back_as_written() {
    let app = spawn_app().await;
    let quantity = |value: f64, unit: &str| json!({"value": value, "unit": unit});
    let documents = [
        (
            "750C",
            json!({"temperature": quantity(750.0, "degC"), "pressure": quantity(0.1, "mbar"),
            "thickness": quantity(25.0, "nm"), "dwell": quantity(2.0, "min"),
            "pass_energy": quantity(20.0, "eV"), "rf": quantity(13.56, "MHz"),
            "bias": quantity(500.0, "mV"), "emission": quantity(20.0, "mA"),
            "power": quantity(300.0, "W"), "mass": quantity(12.0, "mg"),
            "tilt": quantity(45.0, "deg")}),
        ),
        (
            "700C",
            json!({"temperature": quantity(700.0, "degC"), "pressure": quantity(1.0, "Torr"),
            "thickness": quantity(300.0, "Å"), "dwell": quantity(90.0, "s"),
            "pass_energy": quantity(1e-18, "J"), "rf": quantity(2.0, "GHz"),
            "bias": quantity(2.0, "V"), "emission": quantity(1.0, "A"),
            "power": quantity(50.0, "mW"), "mass": quantity(0.5, "g"),
            "tilt": quantity(1.0, "rad")}),
        ),
        ("plain", json!({"temperature": 800, "pressure": "high"})),
        (
            "odd unit",
            json!({"temperature": quantity(2000.0, "furlongs")}),
        ),
    ];
    let mut stored = Vec::new();
    for (name, metadata) in documents {
        let entry = app
            .create_entry(json!({"raw_name": name, "metadata": metadata}))
            .await;
        assert_eq!(entry["metadata"], metadata, "stored as written");
        stored.push((name, metadata));
    }
    let find = |filter: &str| {
        let filter = filter.to_owned();
        let app = &app;
        async move { names(app, &filter).await }
    };
    // 750 °C = 1023.15 K ≥ 1000 K; 700 °C = 973.15 K is not.
    assert_eq!(
        find(&format!("metadata.temperature[gte]={}", enc("1000 K"))).await,
        ["750C"]
    );
    assert_eq!(find("metadata.temperature[gte]=750degC").await, ["750C"]);
    assert_eq!(
        find(&format!("metadata.temperature[lt]={}", enc("1300 °F"))).await,
        ["700C"]
    );
    // 0.1 mbar = 10 Pa; 1 Torr ≈ 133 Pa.
    assert_eq!(
        find(&format!("metadata.pressure[lt]={}", enc("50 Pa"))).await,
        ["750C"]
    );
    assert_eq!(
        find(&format!("metadata.pressure[gt]={}", enc("0.5 mbar"))).await,
        ["700C"]
    );
    // 300 Å = 30 nm.
    assert_eq!(
        find(&format!("metadata.thickness[gt]={}", enc("0.027 µm"))).await,
        ["700C"]
    );
    assert_eq!(find("metadata.dwell[gte]=100s").await, ["750C"]);
    // 20 eV ≈ 3.2e-18 J.
    assert_eq!(find("metadata.pass_energy[gt]=1.5e-18J").await, ["750C"]);
    assert_eq!(find("metadata.rf[gt]=100MHz").await, ["700C"]);
    assert_eq!(find("metadata.bias[lt]=1V").await, ["750C"]);
    assert_eq!(find("metadata.emission[lt]=0.1A").await, ["750C"]);
    assert_eq!(find("metadata.power[gt]=1kW").await, Vec::<String>::new());
    assert_eq!(find("metadata.power[lt]=1W").await, ["700C"]);
    assert_eq!(find("metadata.mass[gt]=100mg").await, ["700C"]);
    assert_eq!(find("metadata.tilt[gt]=50deg").await, ["700C"]);
    assert_eq!(find("metadata.tilt[eq]=45deg").await, ["750C"]);
    // Without a unit, the value as written; an unknown stored unit matches that only.
    assert_eq!(
        find("metadata.temperature[gte]=750").await,
        ["750C", "odd unit", "plain"]
    );
    assert_eq!(
        find(&format!("metadata.temperature[gte]={}", enc("0 K"))).await,
        ["700C", "750C"]
    );
    // A filter's units must be known and of one dimension.
    for (query, says) in [
        (
            format!("metadata.temperature[gte]={}", enc("5 parsecs")),
            vec!["parsecs"],
        ),
        (
            format!("metadata.temperature[in]={}", enc("1 K,2 mbar")),
            vec!["temperature", "pressure"],
        ),
        (
            format!(
                "metadata.temperature[gte]={}&metadata.temperature[lte]={}",
                enc("1 K"),
                enc("2 mbar")
            ),
            vec!["temperature", "pressure"],
        ),
    ] {
        let (status, problem) = send(app.get(&format!("/data_entries?{query}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(
            problem["errors"][0]["field"]
                .as_str()
                .unwrap()
                .starts_with("metadata.temperature")
        );
        for word in says {
            assert!(message.contains(word), "{query}: {message}");
        }
    }
    let (_, all) = send(app.get("/data_entries?order_by=upload_datetime")).await;
    for (entry, (name, written)) in all.as_array().unwrap().iter().zip(&stored) {
        assert_eq!(entry["raw_name"], *name);
        assert_eq!(
            &entry["metadata"], written,
            "the document is returned as written"
        );
    }
}

/// Every page of `GET /data_entries?<query>`, following `Link: rel="next"`.
async fn all_pages(app: &TestApp, query: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut url = format!("{}/data_entries?{query}", app.address);
    loop {
        let response = crate::helpers::http_client()
            .get(&url)
            .header("X-API-KEY", &app.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let next = response
            .headers()
            .get("link")
            .map(|link| link.to_str().unwrap().to_owned());
        let page: Value = response.json().await.unwrap();
        found.extend(page.as_array().unwrap().iter().cloned());
        match next {
            Some(link) => {
                url = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            }
            None => return found,
        }
    }
}

#[tokio::test]
async fn ordering_by_a_metadata_path_sorts_numbers_quantities_strings_then_the_rest() {
    let app = spawn_app().await;
    for (name, metadata) in [
        ("nine", json!({"x": 9})),
        ("ten", json!({"x": 10})),
        ("warm", json!({"x": {"value": 300, "unit": "K"}})),
        ("hot", json!({"x": {"value": 100, "unit": "degC"}})),
        ("b", json!({"x": "b"})),
        ("a", json!({"x": "a"})),
        ("none", json!({"y": 1})),
    ] {
        app.create_entry(json!({"raw_name": name, "metadata": metadata}))
            .await;
    }
    let order = |query: &str| {
        let app = &app;
        let query = query.to_owned();
        async move {
            let (status, found) = send(app.get(&format!("/data_entries?{query}"))).await;
            assert_eq!(status, StatusCode::OK, "{found}");
            found
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["raw_name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // 9 < 10 < 300 K < 100 °C (373.15 K), then strings, then the entry without the path.
    assert_eq!(
        order("order_by=metadata.x").await,
        ["nine", "ten", "warm", "hot", "a", "b", "none"]
    );
    assert_eq!(
        order("order_by=-metadata.x").await,
        ["hot", "warm", "ten", "nine", "b", "a", "none"]
    );
    // Paged one at a time, the same order.
    let paged: Vec<String> = all_pages(&app, "order_by=-metadata.x&limit=1")
        .await
        .iter()
        .map(|e| e["raw_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paged, ["hot", "warm", "ten", "nine", "b", "a", "none"]);
    // A cursor belongs to its order.
    let (_, page) = send(app.get("/data_entries?order_by=metadata.x&limit=1")).await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (status, _) = send(app.get("/data_entries?order_by=metadata.x%5C&limit=1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sorted_pages_return_every_entry_exactly_once_while_entries_change() {
    // The writers below write as fast as they can; the rate limit is not under test.
    let app = spawn_app_with(|settings| settings.rate_limit.enabled = false).await;
    app.seed(
        "INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, metadata,
                                   project_id)
         SELECT gen_random_uuid(), $1, 'e' || i, 'xps',
                jsonb_build_object('stage', jsonb_build_object('energy', (i % 37) * 1.5),
                                   'note', 'n' || i),
                (SELECT project_id FROM projects WHERE created_by = $1 AND personal)
         FROM generate_series(1, 1000) AS i",
    )
    .await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT data_id::text FROM data_entries")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    // Writers change other metadata and typed fields of the same entries meanwhile.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, address, key, ids, stop) = (
            crate::helpers::http_client(),
            app.address.clone(),
            app.api_key.clone(),
            ids.clone(),
            stop.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = &ids[n * 7 % ids.len()];
                let response = client
                    .patch(format!("{address}/data_entries/{id}"))
                    .header("X-API-KEY", &key)
                    .json(&json!({"pipeline_status": "running", "metadata": {"note": format!("w{n}")}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                n += 4;
            }
        }));
    }
    let seen = all_pages(&app, "order_by=-metadata.stage.energy&limit=37").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let mut seen_ids: Vec<&str> = seen
        .iter()
        .map(|e| e["data_id"].as_str().unwrap())
        .collect();
    let energies: Vec<f64> = seen
        .iter()
        .map(|e| e["metadata"]["stage"]["energy"].as_f64().unwrap())
        .collect();
    assert!(energies.windows(2).all(|w| w[0] >= w[1]), "descending");
    seen_ids.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(seen_ids, expected, "each entry exactly once");
}

#[tokio::test]
async fn range_exists_unit_and_word_filters_on_declared_paths_are_answered_from_an_index() {
    let app = spawn_app_with(|settings| {
        settings.search.indexed_paths =
            ["instrument.settings.pass_energy", "temperature", "flagged"]
                .map(String::from)
                .to_vec();
    })
    .await;
    app.seed(
        "INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, metadata,
                                   project_id)
         SELECT gen_random_uuid(), $1, 'run_' || i || '.vms', 'xps',
                jsonb_build_object(
                    'instrument', jsonb_build_object('settings',
                        jsonb_build_object('pass_energy', i % 200)),
                    'temperature', jsonb_build_object('value', i % 900,
                        'unit', (ARRAY['degC', 'K'])[1 + i % 2]),
                    'material', 'sample' || i) ||
                CASE WHEN i % 100 = 0 THEN '{\"flagged\": true}'::jsonb ELSE '{}' END,
                (SELECT project_id FROM projects WHERE created_by = $1 AND personal)
         FROM generate_series(1, 20000) AS i",
    )
    .await;
    sqlx::query("ANALYZE").execute(&app.pool).await.unwrap();
    // Each declared path is a partition of metadata_values with its own lookup index.
    let lookup_index = |path: &'static [&'static str]| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT index.relname::text
                 FROM pg_inherits
                 JOIN pg_class AS index ON index.oid = pg_inherits.inhrelid
                 JOIN pg_index ON pg_index.indexrelid = index.oid
                 WHERE pg_inherits.inhparent = 'metadata_values_lookup_idx'::regclass
                   AND pg_index.indrelid = metadata_values_partition($1)::regclass",
            )
            .bind(path)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let flagged_partition: String = sqlx::query_scalar("SELECT metadata_values_partition($1)")
        .bind(["flagged"])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for (pairs, index) in [
        (
            vec![
                ("metadata.instrument.settings.pass_energy[gte]", "198"),
                ("order_by", "-metadata.instrument.settings.pass_energy"),
            ],
            lookup_index(&["instrument", "settings", "pass_energy"]).await,
        ),
        (
            vec![("metadata.temperature[gte]", "1100 K")],
            lookup_index(&["temperature"]).await,
        ),
        // Every row of `flagged`'s partition is a match, so it is read whole: the partition
        // is that path's index.
        (
            vec![("metadata.flagged[exists]", "true")],
            flagged_partition,
        ),
        (
            vec![("q", "sample1234")],
            "data_entries_words_idx".to_owned(),
        ),
    ] {
        let query = labcat::domain::SearchQuery::parse(
            pairs.iter().copied(),
            &labcat::domain::search::CursorKey([0; 32]),
        )
        .unwrap();
        let plan = labcat::db::data_entries::explain_search(
            &app.pool,
            app.access(),
            &query,
            &app.indexed_paths,
        )
        .await
        .unwrap();
        assert!(
            plan.contains(&index),
            "{pairs:?} should use {index}:\n{plan}"
        );
    }
    // And they find what they should.
    let (_, found) =
        send(app.get("/data_entries?metadata.flagged%5Bexists%5D=true&limit=1000")).await;
    assert_eq!(found.as_array().unwrap().len(), 200);
    let (_, found) = send(app.get("/data_entries?q=sample1234&limit=1000")).await;
    assert_eq!(found.as_array().unwrap().len(), 1 + 10);
}

/// The same writes on two apps, one declaring every filtered path in `search.indexed_paths`.
async fn declared_and_undeclared() -> (TestApp, TestApp) {
    let plain = spawn_app().await;
    let indexed = spawn_app_with(|settings| {
        settings.search.indexed_paths = ["stage.energy", "temperature", "tags", "when", "flag"]
            .map(String::from)
            .to_vec();
    })
    .await;
    for app in [&plain, &indexed] {
        let documents = [
            json!({"stage": {"energy": 20}, "temperature": {"value": 750, "unit": "degC"}, "tags": [1, 2, "x"], "when": "2024-05-01T10:00:00Z", "flag": true}),
            json!({"stage": {"energy": 40, "more": [1]}, "temperature": {"value": 1000, "unit": "K"}, "tags": [3], "when": "2023-01-01T00:00:00+02:00"}),
            json!({"stage": [{"energy": 5}, {"energy": 70}], "temperature": 300, "tags": "none"}),
            json!({"stage": "none", "temperature": {"value": 5, "unit": "furlong"}, "flag": null}),
        ];
        let mut ids = Vec::new();
        for (i, metadata) in documents.into_iter().enumerate() {
            let entry = app
                .create_entry(json!({"raw_name": format!("e{i}"), "metadata": metadata}))
                .await;
            ids.push(entry["data_id"].as_str().unwrap().to_owned());
        }
        // Merges that change, remove, retype and add what the filters look at.
        for (id, patch) in [
            (
                &ids[0],
                json!({"stage": {"energy": 25}, "tags": [2, 9], "flag": null}),
            ),
            (
                &ids[1],
                json!({"temperature": {"value": 400, "unit": "degC"}, "stage": {"more": null}}),
            ),
            (
                &ids[2],
                json!({"stage": {"energy": 60}, "when": "2025-01-01T00:00:00Z"}),
            ),
            (
                &ids[3],
                json!({"temperature": {"unit": "K"}, "flag": false, "tags": [[4]]}),
            ),
        ] {
            let (status, body) = send(
                app.request(reqwest::Method::PATCH, &format!("/data_entries/{id}"))
                    .json(&json!({"metadata": patch})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    (plain, indexed)
}

#[tokio::test]
async fn filters_on_declared_and_undeclared_paths_find_the_same_entries_after_writes() {
    let (plain, indexed) = declared_and_undeclared().await;
    let queries = [
        "metadata.stage.energy[gte]=25",
        "metadata.stage.energy[lt]=60",
        "metadata.stage.energy[eq]=60",
        "metadata.stage.energy[in]=25,40",
        "metadata.stage.energy[exists]=true",
        "metadata.stage.energy[exists]=false",
        "metadata.temperature[gte]=500%20K",
        "metadata.temperature[lt]=500%20K",
        "metadata.temperature[gte]=300",
        "metadata.temperature[exists]=true",
        "metadata.tags[gt]=2",
        "metadata.tags[eq]=4",
        "metadata.when[gte]=2024-01-01T00:00:00Z",
        "metadata.when[lt]=2024-01-01T00:00:00Z",
        "metadata.flag[exists]=true",
        "metadata.flag[exists]=false",
        "metadata.flag[eq]=false",
    ];
    let mut found_any = 0;
    for query in queries {
        let expected = names(&plain, query).await;
        assert_eq!(names(&indexed, query).await, expected, "{query}");
        found_any += usize::from(!expected.is_empty());
    }
    assert!(found_any >= 12, "the queries select something");
    // The declared paths' answers do come from the index: its rows are the documents' facts.
    let stale: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             (SELECT data_id, indexed.path, fact.kind, fact.value
              FROM data_entries, metadata_indexed_paths AS indexed,
                   metadata_values_at(metadata, indexed.path) AS fact
              EXCEPT SELECT data_id, path, kind, value FROM metadata_values)
             UNION ALL
             (SELECT data_id, path, kind, value FROM metadata_values
              EXCEPT SELECT data_id, indexed.path, fact.kind, fact.value
              FROM data_entries, metadata_indexed_paths AS indexed,
                   metadata_values_at(metadata, indexed.path) AS fact)) AS differing",
    )
    .fetch_one(&indexed.pool)
    .await
    .unwrap();
    assert_eq!(stale, 0);
    let facts: i64 = sqlx::query_scalar("SELECT count(*) FROM metadata_values")
        .fetch_one(&indexed.pool)
        .await
        .unwrap();
    assert!(facts > 10, "{facts}");
}

#[tokio::test]
async fn a_newly_declared_path_is_indexed_over_stored_entries_and_a_dropped_one_forgotten() {
    let (plain, _) = declared_and_undeclared().await;
    // A key no table name could hold: the partition is named from a digest of the path.
    let odd = vec!["it's a \"key\", {x}".to_owned(), "π.2".to_owned()];
    let declared = vec![vec!["temperature".to_owned()], odd.clone()];
    labcat::db::metadata_index::sync(&plain.pool, &declared)
        .await
        .unwrap();
    let paths: Vec<Vec<String>> =
        sqlx::query_scalar("SELECT DISTINCT path FROM metadata_values ORDER BY path")
            .fetch_all(&plain.pool)
            .await
            .unwrap();
    assert_eq!(paths, [vec!["temperature".to_owned()]]);
    plain
        .create_entry(json!({"raw_name": "odd", "metadata": {"it's a \"key\", {x}": {"π.2": 5}}}))
        .await;
    assert_eq!(
        names(
            &plain,
            &format!("metadata.{}[gte]=4", enc(r#"it's a "key", {x}.π\.2"#))
        )
        .await,
        ["odd"]
    );
    let odd_facts: i64 = sqlx::query_scalar("SELECT count(*) FROM metadata_values WHERE path = $1")
        .bind(&odd)
        .fetch_one(&plain.pool)
        .await
        .unwrap();
    assert!(odd_facts > 0);
    labcat::db::metadata_index::sync(&plain.pool, &[])
        .await
        .unwrap();
    let (facts, partitions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM metadata_values),
                (SELECT count(*) FROM pg_inherits
                 WHERE inhparent = 'metadata_values'::regclass)",
    )
    .fetch_one(&plain.pool)
    .await
    .unwrap();
    assert_eq!((facts, partitions), (0, 0));
}
