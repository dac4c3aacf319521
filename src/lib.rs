//! glue-auth: the company-account authentication of Spryker's Glue Storefront API as a
//! standalone service.
//!
//! Reading order:
//! - [`cli`] and [`config`]: the command line and the settings;
//! - [`app`]: start-up, the bound server, graceful shutdown;
//! - [`api`]: the HTTP surface: JSON:API documents, the error envelope, the request pipeline,
//!   one module per resource, the OpenAPI document;
//! - [`service`]: what the operations do, with no HTTP in it;
//! - [`auth`]: passwords (and, with the token endpoints, keys and claims);
//! - [`error`]: the one domain error, which [`api::errors`] maps to statuses and Glue codes;
//! - [`client_address`]: who a request comes from, behind trusted proxies too;
//! - [`db`], [`dataset`], [`admin`]: the database, the import format, the admin verbs.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod client_address;
pub mod clock;
pub mod config;
pub mod dataset;
pub mod db;
pub mod error;
pub mod generations;
pub mod listener;
pub mod mail;
pub mod service;
pub mod spryker;
pub mod telemetry;

/// The rules of the layers (`docs/architecture.md` §1), checked on the source itself.
#[cfg(test)]
mod layering {
    use std::{
        collections::{BTreeMap, BTreeSet},
        path::{Path, PathBuf},
    };

    /// Every `.rs` file under `dir`, with its text before its unit tests.
    fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("a source directory") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("a source file");
                    let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
                    found.push((path, code));
                }
            }
        }
        found
    }

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    /// The top-level modules `code` names through `crate::`, in paths and `use` trees.
    fn crate_paths(code: &str) -> BTreeSet<String> {
        let mut named = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(tree) = rest.strip_prefix('{') {
                // The first segment of each path of the tree, at its top level.
                let (mut depth, mut start) = (0usize, 0usize);
                for (i, c) in tree.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            named.insert(first_segment(&tree[start..i]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            named.insert(first_segment(&tree[start..i]));
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
            } else {
                named.insert(first_segment(rest));
            }
        }
        named.retain(|m| !m.is_empty());
        named
    }

    fn first_segment(path: &str) -> String {
        path.trim().chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect()
    }

    #[test]
    fn no_top_level_module_depends_on_itself_through_others() {
        let root = src();
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, code) in sources(&root) {
            let relative = path.strip_prefix(&root).expect("under src");
            let first = relative.components().next().expect("a file").as_os_str();
            let module = first.to_string_lossy().trim_end_matches(".rs").to_owned();
            if module == "lib" || module == "main" {
                continue;
            }
            let mut named = crate_paths(&code);
            named.remove(&module);
            deps.entry(module).or_default().extend(named);
        }
        assert!(deps["api"].contains("service"), "the scan reads `use crate::{{..}}` trees");
        for start in deps.keys() {
            let mut seen = BTreeSet::new();
            let mut pending: Vec<&String> = deps[start].iter().collect();
            while let Some(next) = pending.pop() {
                assert_ne!(next, start, "{start} depends on itself: {deps:#?}");
                if seen.insert(next) {
                    pending.extend(deps.get(next).into_iter().flatten());
                }
            }
        }
    }

    #[test]
    fn api_holds_no_database_and_service_no_http() {
        for (path, code) in sources(&src().join("api")) {
            assert!(!code.contains("sea_orm::"), "{} uses sea-orm", path.display());
            assert!(!code.contains("entity::"), "{} uses the entities", path.display());
        }
        for (path, code) in sources(&src().join("service")) {
            let poem = code.contains("poem::") || code.contains("poem_openapi");
            assert!(!poem, "{} uses poem", path.display());
        }
    }

    #[test]
    fn the_scan_finds_paths_and_use_trees() {
        let named = crate_paths("use crate::{a::b, c::{d, e}, f};\nlet x = crate::g::h();");
        assert_eq!(named, ["a", "c", "f", "g"].map(String::from).into());
    }
}
