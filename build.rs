//! Embeds `migrations/` into the binary: writes `$OUT_DIR/migrations.rs`, a list of
//! `(version, description, sql)` that `db::MIGRATOR` turns into sqlx migrations. sqlx's
//! `migrate!` does the same, but it lives in sqlx's proc-macro crate, which compiles a second
//! sqlx for the compiler (bench/README.md, "Build time").

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations/ is readable")
        .map(|entry| entry.expect("a migrations/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    let mut list = String::from("&[\n");
    for path in files {
        // `<version>_<description>.sql`, named as sqlx names them.
        let stem = path
            .file_stem()
            .unwrap()
            .to_str()
            .expect("UTF-8 file names");
        let (version, description) = stem
            .split_once('_')
            .expect("migration files are named <version>_<description>.sql");
        let version: i64 = version.parse().expect("a numeric migration version");
        let description = description.replace('_', " ");
        writeln!(
            list,
            "    ({version}, {description:?}, include_str!({path:?})),"
        )
        .unwrap();
    }
    list.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(out, list).expect("OUT_DIR is writable");
}
