//! Tidy checks: every destination folder is registered and complete, and
//! every registered destination has a folder.

use std::path::Path;

use switchyard_catalog::{Category, Mode, SettingType, validate_settings};
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
    assert_eq!(raw, ["slack", "webhook"]);
    assert!(catalog.search(Some("no such tool"), None).is_empty());
}

#[test]
fn the_registry_is_alphabetical() {
    let slugs: Vec<_> = REGISTRY.iter().map(|(slug, _, _)| *slug).collect();
    let mut sorted = slugs.clone();
    sorted.sort();
    assert_eq!(slugs, sorted);
}

#[test]
fn the_catalog_is_broad_enough() {
    let catalog = catalog().unwrap();
    assert!(
        catalog.all().len() >= 15,
        "only {} destinations",
        catalog.all().len()
    );
    let categories: Vec<Category> = Category::ALL
        .into_iter()
        .filter(|c| catalog.all().iter().any(|d| d.categories.contains(c)))
        .collect();
    assert!(
        categories.len() >= 7,
        "only {} categories: {categories:?}",
        categories.len()
    );
}

#[test]
fn one_recommended_destination_in_each_starter_category() {
    let catalog = catalog().unwrap();
    let starters = [
        Category::Analytics,
        Category::EmailMarketing,
        Category::LiveChat,
    ];
    for category in starters {
        let recommended: Vec<_> = catalog
            .all()
            .iter()
            .filter(|d| d.recommended && d.categories.contains(&category))
            .map(|d| d.slug.as_str())
            .collect();
        assert_eq!(
            recommended.len(),
            1,
            "{}: recommended {recommended:?}",
            category.name()
        );
    }
    for d in catalog.all().iter().filter(|d| d.recommended) {
        assert!(
            d.categories.iter().any(|c| starters.contains(c)),
            "{} is recommended outside the starter categories",
            d.slug
        );
    }
}

#[test]
fn device_mode_destinations_name_their_script() {
    for d in catalog().unwrap().all() {
        let setting = d.settings.iter().find(|s| s.key == "scriptUrl");
        if d.mode(Mode::Device).is_none() {
            assert!(
                d.script_url.is_none(),
                "{} has no device mode but a script_url",
                d.slug
            );
            assert!(
                setting.is_none(),
                "{} has no device mode but a scriptUrl setting",
                d.slug
            );
            continue;
        }
        let script_url = d
            .script_url
            .as_deref()
            .unwrap_or_else(|| panic!("{} has a device mode but no script_url", d.slug));
        assert!(
            script_url.starts_with("https://"),
            "{}: {script_url}",
            d.slug
        );
        let setting = setting
            .unwrap_or_else(|| panic!("{} has a device mode but no scriptUrl setting", d.slug));
        assert_eq!(setting.kind, SettingType::String, "{}", d.slug);
        assert_eq!(setting.modes, [Mode::Device], "{}: scriptUrl modes", d.slug);
        assert_eq!(
            setting.default.as_ref().and_then(|v| v.as_str()),
            Some(script_url),
            "{}: scriptUrl default",
            d.slug
        );
    }
}

#[test]
fn passwords_are_secret_and_select_defaults_are_choices() {
    for d in catalog().unwrap().all() {
        for s in &d.settings {
            if s.kind == SettingType::Password {
                assert!(
                    s.secret,
                    "{}.{} is a password but not secret",
                    d.slug, s.key
                );
            }
            if s.kind == SettingType::Select
                && let Some(default) = &s.default
            {
                let default = default.as_str().unwrap_or_default();
                assert!(
                    s.choices.iter().any(|c| c == default),
                    "{}.{}: default {default:?} is not one of {:?}",
                    d.slug,
                    s.key,
                    s.choices
                );
            }
            for mode in &s.modes {
                assert!(
                    d.mode(*mode).is_some(),
                    "{}.{} is for {} mode, which {} does not have",
                    d.slug,
                    s.key,
                    mode.as_str(),
                    d.slug
                );
            }
        }
    }
}

#[test]
fn every_default_passes_its_own_validation() {
    for d in catalog().unwrap().all() {
        for s in d.settings.iter().filter(|s| s.default.is_some()) {
            // The setting alone, so other required settings do not interfere.
            let mut alone = d.clone();
            alone.settings = vec![s.clone()];
            let mode = s.modes.first().copied().unwrap_or(d.modes[0].mode);
            // Without a value the default is filled in unchecked; given back
            // as a value, it is checked for type, choices and pattern.
            let filled = validate_settings(&alone, mode, &Default::default()).unwrap();
            assert_eq!(
                filled.get(&s.key),
                s.default.as_ref(),
                "{}.{}",
                d.slug,
                s.key
            );
            if let Err(e) = validate_settings(&alone, mode, &filled) {
                panic!("{}.{}: default {:?} fails: {e}", d.slug, s.key, s.default);
            }
        }
    }
}

/// The file that implements a mode inside a destination's folder: the
/// device adapter or the cloud forwarder.
fn implementation_file(mode: switchyard_catalog::Mode) -> &'static str {
    match mode {
        switchyard_catalog::Mode::Device => "device.rs",
        switchyard_catalog::Mode::Cloud => "cloud.rs",
    }
}

/// A mode is offered as available only when its implementation is in the
/// destination's folder and compiled in (declared in the folder's
/// `mod.rs`); otherwise the catalog must say `available = false`.
#[test]
fn a_mode_is_available_only_with_its_implementation() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for d in catalog().unwrap().all() {
        let folder = src.join(&d.slug);
        let module = std::fs::read_to_string(folder.join("mod.rs")).unwrap_or_default();
        for m in &d.modes {
            let file = implementation_file(m.mode);
            let stem = file.trim_end_matches(".rs");
            let declared = module.lines().any(|line| {
                let line = line.trim().trim_end_matches(';');
                line.split_whitespace().last() == Some(stem)
                    && line.split_whitespace().any(|w| w == "mod")
            });
            let implemented = folder.join(file).is_file() && declared;
            assert!(
                !m.available || implemented,
                "{}: {} mode is marked available but {}/{file} is missing or not declared in mod.rs",
                d.slug,
                m.mode.as_str(),
                d.slug
            );
        }
    }
}
