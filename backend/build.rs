//! Embeds every `migrations/<version>_<description>.sql` file into the binary, in version
//! order, so a new migration needs no code change.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not with env!(): a compiled build script is reused across checkouts
    // that share a target dir, and a path baked in at compile time would point at another one.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("migrations");
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut found: Vec<(i64, String, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read migrations directory") {
        let path = entry.expect("read migrations entry").path();
        println!("cargo:rerun-if-changed={}", path.display());
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        let (version, description) = stem
            .split_once('_')
            .unwrap_or_else(|| panic!("migration {name}: expected <version>_<description>.sql"));
        let version: i64 = version
            .parse()
            .unwrap_or_else(|_| panic!("migration {name}: version is not an integer"));
        found.push((
            version,
            description.replace('_', " "),
            path.display().to_string(),
        ));
    }
    found.sort_by_key(|m| m.0);
    for pair in found.windows(2) {
        assert!(
            pair[0].0 != pair[1].0,
            "duplicate migration version {}",
            pair[0].0
        );
    }

    let mut out = String::from("pub static MIGRATIONS: &[EmbeddedMigration] = &[\n");
    for (version, description, path) in &found {
        writeln!(
            out,
            "    EmbeddedMigration {{ version: {version}, description: {description:?}, sql: include_str!({path:?}) }},"
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(dest, out).expect("write generated migrations list");
}
