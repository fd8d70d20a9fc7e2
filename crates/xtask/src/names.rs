//! Short names for what the module imports from the glue and exports to
//! it. wasm-bindgen names them for uniqueness, not size
//! (`__wbg_getItem_1cc3a8ba4b5e9a1f`, closure adapters with whole type
//! paths and crate hashes): each name is written twice, in the module and
//! in the glue, and the hashes do not compress. The module is renamed with
//! walrus (the library wasm-bindgen itself rewrites modules with) and the
//! glue to match, checked so that no name is left behind:
//!
//! - the import module (`"./switchyard_bg.js"`) is a key of the imports
//!   object, once; each import is a key of that module's object, once;
//! - each export is read as `wasm.<name>` and only so: a `wasm.<name>` the
//!   module does not export, or a wasm-bindgen name (`__` in it) of an
//!   export read through another object or as a string, fails the build.
//!
//! The public API (`wasm_bindgen.call`, ...) is the glue's own JavaScript
//! and keeps its names.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// How a device adapter's export is named: `device:<slug>`.
const DEVICE_EXPORT: &str = "device:";

/// The name the renamed module imports its functions from.
const MODULE: &str = "a";

/// The `index`th shortest JavaScript identifier: `a`..`$`, then `aa`...
fn short_name(mut index: usize) -> String {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$0123456789";
    let mut name = vec![FIRST[index % FIRST.len()]];
    index /= FIRST.len();
    while index > 0 {
        index -= 1;
        name.push(REST[index % REST.len()]);
        index /= REST.len();
    }
    String::from_utf8_lossy(&name).into_owned()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// Each identifier token of `js` (ASCII identifiers; anything else is
/// passed over), with its byte range.
fn tokens(js: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = js.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
                let start = i;
                while i < bytes.len() && is_ident(bytes[i]) {
                    i += 1;
                }
                return Some((start, i));
            }
            i += 1;
        }
        None
    })
}

/// Renames in the glue: `module` (the quoted key), each import (as a key)
/// and each export (as `wasm.<name>`).
fn rewrite_glue(
    glue: &str,
    module: &str,
    imports: &HashMap<String, String>,
    exports: &HashMap<String, String>,
) -> Result<String> {
    let quoted = ["\"", module, "\""].concat();
    if glue.matches(&quoted).count() != 1 {
        bail!("the glue does not name the import module {quoted} exactly once");
    }
    let glue = glue.replacen(&quoted, &["\"", MODULE, "\""].concat(), 1);
    let bytes = glue.as_bytes();
    let mut out = String::with_capacity(glue.len());
    let mut copied = 0;
    let mut keyed: HashMap<&str, usize> = HashMap::new();
    for (start, end) in tokens(&glue) {
        let token = &glue[start..end];
        let member_of_wasm = start >= 5
            && &bytes[start - 5..start] == b"wasm."
            && (start == 5 || !is_ident(bytes[start - 6]));
        let new = if member_of_wasm {
            Some(exports.get(token).with_context(|| {
                format!("the glue reads wasm.{token}, which the module does not export")
            })?)
        } else if let Some(new) = imports.get(token) {
            let key = glue[end..].trim_start().starts_with(':');
            if !key {
                bail!("the glue names the import {token} other than as a key");
            }
            *keyed.entry(token).or_default() += 1;
            Some(new)
        } else if token.contains("__")
            && exports.contains_key(token)
            && start > 0
            && matches!(bytes[start - 1], b'.' | b'"' | b'\'')
        {
            // Read through another object, or by a string: the glue would
            // miss it once renamed. (A JavaScript function of the same name,
            // as the glue writes for closure adapters, is a local name.)
            bail!("the glue reads the export {token} other than as wasm.{token}");
        } else {
            None
        };
        if let Some(new) = new {
            out.push_str(&glue[copied..start]);
            out.push_str(new);
            copied = end;
        }
    }
    out.push_str(&glue[copied..]);
    for name in imports.keys() {
        if keyed.get(name.as_str()) != Some(&1) {
            bail!("the glue does not provide the import {name} exactly once");
        }
    }
    Ok(out)
}

/// Writes the module at `input` to `output` with its imports and exports
/// renamed, and returns `glue` rewritten to match.
pub(crate) fn shorten(input: &Path, output: &Path, glue: &str) -> Result<String> {
    let mut module = walrus::ModuleConfig::new()
        .generate_producers_section(false)
        .parse_file(input)
        .context("walrus cannot read wasm-bindgen's module")?;
    // wasm-bindgen's module imports everything from the glue, under one
    // module name.
    let Some(glue_module) = module.imports.iter().next().map(|i| i.module.clone()) else {
        bail!("the module imports nothing: not wasm-bindgen's output");
    };
    let mut imports = HashMap::new();
    for import in module.imports.iter_mut() {
        if import.module != glue_module {
            bail!(
                "the module imports from {} and {}: cannot rename",
                glue_module,
                import.module
            );
        }
        let new = short_name(imports.len());
        imports.insert(std::mem::replace(&mut import.name, new.clone()), new);
        import.module = MODULE.into();
    }
    // The exports the glue reads most get the shortest names. The device
    // adapters' exports (`device:<slug>`) keep theirs: the bundler finds
    // them by name, and the library calls them by the destination's slug.
    let mut uses: Vec<(usize, String)> = module
        .exports
        .iter()
        .filter(|e| !e.name.starts_with(DEVICE_EXPORT))
        .map(|e| {
            (
                glue.matches(&["wasm.", &e.name].concat()).count(),
                e.name.clone(),
            )
        })
        .collect();
    uses.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let exports: HashMap<String, String> = uses
        .into_iter()
        .enumerate()
        .map(|(i, (_, name))| (name, short_name(i)))
        .collect();
    for export in module.exports.iter_mut() {
        if let Some(short) = exports.get(&export.name) {
            export.name = short.clone();
        }
    }
    let glue = rewrite_glue(glue, &glue_module, &imports, &exports)?;
    module
        .emit_wasm_file(output)
        .context("walrus cannot write the module")?;
    Ok(glue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_distinct_identifiers() {
        let names: Vec<String> = (0..54 * 64 + 60).map(short_name).collect();
        assert_eq!(names[0], "a");
        assert_eq!(names[53], "$");
        assert_eq!(names[54], "aa");
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| !n.as_bytes()[0].is_ascii_digit()));
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const GLUE: &str = r#"
    function call(a) { return wasm.call(a, wasm.__wbindgen_malloc); }
    function __wbindgen_malloc(a) { return __wbindgen_malloc(a); }
    const import0 = {
        __wbg_get_0123456789abcdef: function(a) { return a.get(); },
        __wbindgen_cast_1: function(a) { return a; },
    };
    return { "./switchyard_bg.js": import0 };
    f.call(this); // `call` the JavaScript method is left alone
    "#;

    #[test]
    fn imports_exports_and_module_are_renamed_in_the_glue() {
        let imports = map(&[
            ("__wbg_get_0123456789abcdef", "a"),
            ("__wbindgen_cast_1", "b"),
        ]);
        let exports = map(&[("call", "a"), ("__wbindgen_malloc", "b")]);
        let out = rewrite_glue(GLUE, "./switchyard_bg.js", &imports, &exports).unwrap();
        assert!(
            out.contains("function call(a) { return wasm.a(a, wasm.b); }"),
            "{out}"
        );
        assert!(
            out.contains("        a: function(a) { return a.get(); },"),
            "{out}"
        );
        assert!(
            out.contains("        b: function(a) { return a; },"),
            "{out}"
        );
        assert!(out.contains(r#"return { "a": import0 };"#), "{out}");
        assert!(out.contains("f.call(this);"), "{out}");
        // A JavaScript function of an export's name is not the export.
        assert!(out.contains("function __wbindgen_malloc(a) { return __wbindgen_malloc(a); }"));
    }

    #[test]
    fn a_name_left_behind_fails() {
        let imports = map(&[
            ("__wbg_get_0123456789abcdef", "a"),
            ("__wbindgen_cast_1", "b"),
        ]);
        let exports = map(&[("call", "a"), ("__wbindgen_malloc", "b")]);
        let m = "./switchyard_bg.js";
        // An export the module lacks.
        let err = rewrite_glue(GLUE, m, &imports, &map(&[("call", "a")])).unwrap_err();
        assert!(err.to_string().contains("wasm.__wbindgen_malloc"), "{err}");
        // An import the glue does not provide.
        let more = map(&[("__wbg_get_0123456789abcdef", "a"), ("__wbg_gone", "c")]);
        let err = rewrite_glue(GLUE, m, &more, &exports).unwrap_err();
        assert!(err.to_string().contains("__wbg_gone"), "{err}");
        // An export read other than through `wasm.`.
        for aliased in ["w.__wbindgen_malloc", "wasm[\"__wbindgen_malloc\"]"] {
            let glue = GLUE.replace("wasm.__wbindgen_malloc", aliased);
            let err = rewrite_glue(&glue, m, &imports, &exports).unwrap_err();
            assert!(err.to_string().contains("other than as wasm."), "{err}");
        }
        // Another import module.
        assert!(rewrite_glue(GLUE, "./other.js", &imports, &exports).is_err());
    }
}
