//! Tidy checks: every destination folder is registered and complete, and
//! every registered destination has a folder.

use std::path::Path;

use switchyard_destinations::{REGISTRY, catalog};

fn folders() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names: Vec<String> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_folder_is_registered_once_and_every_entry_has_a_folder() {
    let mut registered: Vec<String> = REGISTRY
        .iter()
        .map(|(slug, _, _)| slug.to_string())
        .collect();
    registered.sort();
    assert_eq!(folders(), registered);
}

#[test]
fn every_folder_has_a_manifest_and_a_logo() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for folder in folders() {
        for part in ["manifest.toml", "logo.svg"] {
            assert!(
                src.join(&folder).join(part).is_file(),
                "{folder} has no {part}"
            );
        }
    }
}

#[test]
fn the_catalog_loads_and_search_finds_by_name_and_category() {
    let catalog = catalog().unwrap();
    assert_eq!(catalog.all().len(), REGISTRY.len());
    let found: Vec<_> = catalog
        .search(Some("mixp"), None)
        .iter()
        .map(|d| d.slug.clone())
        .collect();
    assert_eq!(found, ["mixpanel"]);
    let raw: Vec<_> = catalog
        .search(None, Some("raw data"))
        .iter()
        .map(|d| d.slug.clone())
        .collect();
    assert_eq!(raw, ["webhook"]);
    assert!(catalog.search(Some("no such tool"), None).is_empty());
}
