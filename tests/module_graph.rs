//! The shape of `src/`: no import cycle between its files, and no file over
//! [`MAX_LINES`] lines (`STYLE.md`: one concept per file, layers pointing down).
//!
//! The test parses every file of the library (`src/lib.rs`) and of the binary
//! (`src/main.rs`) with `syn`, following `mod` declarations, and builds a graph
//! of files: an edge `a.rs -> b.rs` when code in `a.rs` names an item that
//! `b.rs` defines. The rules:
//!
//! - A path is resolved as rustc would, from the module it is written in:
//!   `crate::`, `super::`, `self::`, a child module, an item of the module, or a
//!   name it imports (`use`, renamed or glob). `permitsync::` in the binary
//!   names the library. Paths to other crates, locals and generics are ignored.
//! - Both `use` declarations and paths written inline in code
//!   (`crate::x::y(..)`, `snapshot::gas_readings(..)`, types, patterns) count.
//! - An edge goes to the file that *defines* the item. Re-exports are followed:
//!   `crate::store::Store` is an edge to `store/store.rs`, not `store/mod.rs`.
//! - A `pub use` / `pub(crate) use` (a re-export) is not an edge by itself; its
//!   file depends on the item only where its own code uses it. So a `mod.rs`
//!   that only declares its children and re-exports their items is a namespace:
//!   it has no edges out and sits on no cycle. A path that names a module (not
//!   an item in it) is an edge to the module's file.
//! - A `mod x;` declaration is not an edge (a parent may declare a child that
//!   imports from it); a `use` of the child's items is.
//! - `#[cfg(test)]` code (unit test modules and files) is left out: the graph is
//!   that of the code that ships.
//! - Method calls are not seen (a type's `impl` blocks may sit in several files);
//!   neither are paths inside macro invocations.
//!
//! Every strongly connected component of more than one file is a cycle, and
//! all of them are reported, each with one concrete loop and the path that
//! makes each step.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use syn::visit::Visit;

/// Longest file allowed in `src/`.
const MAX_LINES: usize = 600;

/// Cycles that still exist outside the node and view layers, each as the set
/// of files of its strongly connected component. A cycle found is allowed when
/// all its files are in one entry (so a cycle may shrink, not grow); an entry
/// that matches no cycle any more must be removed.
const ALLOWED_CYCLES: &[&[&str]] = &[];

/// Files allowed over [`MAX_LINES`] for now; an entry under the limit must be removed.
const ALLOWED_LONG_FILES: &[&str] = &[];

#[test]
fn no_import_cycle_between_files_of_src() {
    let graph = Graph::of_crate(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(
        graph.unresolved.is_empty(),
        "paths into the crate that the test could not resolve (fix the resolver, \
         or the rule it misses):\n{}",
        graph.unresolved.join("\n")
    );
    let cycles = graph.cycles();
    let mut report = String::new();
    for cycle in &cycles {
        let allowed = ALLOWED_CYCLES
            .iter()
            .any(|entry| cycle.files.iter().all(|f| entry.contains(&f.as_str())));
        if !allowed {
            report.push_str(&cycle.describe());
        }
    }
    for entry in ALLOWED_CYCLES {
        let live = cycles
            .iter()
            .any(|c| c.files.iter().any(|f| entry.contains(&f.as_str())));
        if !live {
            let _ = writeln!(
                report,
                "ALLOWED_CYCLES lists {entry:?}, which is no cycle any more: remove the entry\n"
            );
        }
    }
    for cycle in &cycles {
        // the allowed ones too, so that the output shows what is left
        eprintln!("{}", cycle.describe());
    }
    assert!(report.is_empty(), "import cycles in src/:\n\n{report}");
}

#[test]
fn no_file_in_src_is_over_the_line_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut report = String::new();
    let mut long = BTreeSet::new();
    for file in rust_files(&root.join("src")) {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let lines = text.lines().count();
        let name = relative(root, &file);
        if lines > MAX_LINES {
            long.insert(name.clone());
            if !ALLOWED_LONG_FILES.contains(&name.as_str()) {
                let _ = writeln!(report, "{name}: {lines} lines (at most {MAX_LINES})");
            }
        }
    }
    for allowed in ALLOWED_LONG_FILES {
        if !long.contains(*allowed) {
            let _ = writeln!(
                report,
                "ALLOWED_LONG_FILES lists {allowed}, which is within {MAX_LINES} lines \
                 (or gone): remove the entry"
            );
        }
    }
    assert!(report.is_empty(), "files too long:\n{report}");
}

/// The rules catch what they should: a cycle through a `use`, an inline
/// path, a re-export and `super::`, and none through a namespace `mod.rs`.
#[test]
fn the_rules_on_a_small_crate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("src/lib.rs", "pub mod a;\nmod b;\npub use b::Bee;\n");
    // a namespace: children and re-exports only
    write(
        "src/a/mod.rs",
        "mod x;\nmod y;\npub use x::X;\npub use y::Y;\n",
    );
    // x names y's item through the namespace, inline
    write(
        "src/a/x.rs",
        "pub struct X;\nfn f() { let _ = crate::a::Y; }\n",
    );
    // y names x's item through a sibling path
    write(
        "src/a/y.rs",
        "use super::x::X;\npub struct Y;\nfn g(_: X) {}\n",
    );
    // b uses a re-export of itself from the root: no edge (same file)
    write(
        "src/b.rs",
        "pub struct Bee;\nfn h() -> crate::Bee { Bee }\n#[cfg(test)]\nmod tests { use crate::a::X; }\n",
    );
    let graph = Graph::of_crate(dir.path());
    assert!(graph.unresolved.is_empty(), "{:?}", graph.unresolved);
    let cycles = graph.cycles();
    let files: Vec<_> = cycles.iter().map(|c| c.files.clone()).collect();
    assert_eq!(
        files,
        vec![vec!["src/a/x.rs".to_string(), "src/a/y.rs".to_string()]]
    );
    let text = cycles[0].describe();
    assert!(text.contains("crate::a::Y"), "{text}");
    assert!(text.contains("super::x::X"), "{text}");
    // test code is not in the graph
    assert!(!graph
        .edges
        .contains_key(&("src/b.rs".into(), "src/a/x.rs".into())));
}

// ---- the graph -------------------------------------------------------------

/// A module: a file, or an inline `mod x { .. }` inside one.
struct Module {
    file: usize,
    parent: Option<usize>,
    /// The root module of this module's crate.
    root: usize,
    children: HashMap<String, usize>,
    /// Names of the items defined here (types, functions, constants, ...).
    items: HashSet<String>,
    /// `use` declarations: the name they bind (`None` for a glob) and the path.
    imports: Vec<(Option<String>, Vec<String>)>,
    /// Paths the module's own code names (private `use` and inline paths).
    refs: Vec<Vec<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Module(usize),
    /// An item, by the module that defines it.
    Item(usize),
}

struct Graph {
    /// Files, relative to the crate (`src/node/rest.rs`).
    files: Vec<String>,
    /// Edge -> the first path that makes it.
    edges: BTreeMap<(String, String), String>,
    /// Paths into the crate (`crate::`, `super::`, `self::`) that did not resolve.
    unresolved: Vec<String>,
}

struct Cycle {
    files: Vec<String>,
    /// One loop through the component: (from, to, path).
    walk: Vec<(String, String, String)>,
    /// Every edge between files of the component.
    inside: Vec<(String, String, String)>,
}

impl Cycle {
    fn describe(&self) -> String {
        let mut out = format!("cycle among {} files: {:?}\n", self.files.len(), self.files);
        let _ = writeln!(out, " a loop:");
        for (from, to, path) in &self.walk {
            let _ = writeln!(out, "  {from} -> {to}   ({path})");
        }
        let _ = writeln!(out, " all edges among them:");
        for (from, to, path) in &self.inside {
            let _ = writeln!(out, "  {from} -> {to}   ({path})");
        }
        out
    }
}

impl Graph {
    fn of_crate(root: &Path) -> Graph {
        let mut b = Builder {
            root: root.to_path_buf(),
            files: Vec::new(),
            modules: Vec::new(),
            test_files: HashSet::new(),
            library: None,
        };
        let lib = b.load_root(&root.join("src/lib.rs"));
        b.library = Some(lib);
        if root.join("src/main.rs").exists() {
            b.load_root(&root.join("src/main.rs"));
        }
        // every file of src/ is in the graph or is test code: else the walk missed it
        let known: HashSet<String> = b.files.iter().cloned().collect();
        for file in rust_files(&root.join("src")) {
            let name = relative(root, &file);
            assert!(
                known.contains(&name) || b.test_files.contains(&name),
                "{name} is reached from neither src/lib.rs nor src/main.rs"
            );
        }
        let mut edges = BTreeMap::new();
        let mut unresolved = Vec::new();
        for m in 0..b.modules.len() {
            for path in &b.modules[m].refs {
                let from = b.modules[m].file;
                let into_crate = matches!(path[0].as_str(), "crate" | "super" | "self");
                match b.resolve(m, path, 0) {
                    // a lone name that is a module: a local variable named like it
                    Some(Target::Module(_)) if path.len() == 1 => {}
                    Some(Target::Module(t) | Target::Item(t)) => {
                        let to = b.modules[t].file;
                        if to != from {
                            edges
                                .entry((b.files[from].clone(), b.files[to].clone()))
                                .or_insert_with(|| path.join("::"));
                        }
                    }
                    None if into_crate => {
                        unresolved.push(format!("{}: {}", b.files[from], path.join("::")))
                    }
                    None => {}
                }
            }
        }
        Graph {
            files: b.files,
            edges,
            unresolved,
        }
    }

    /// Every strongly connected component of more than one file.
    fn cycles(&self) -> Vec<Cycle> {
        let mut g = DiGraph::<&str, ()>::new();
        let nodes: HashMap<&str, NodeIndex> = self
            .files
            .iter()
            .map(|f| (f.as_str(), g.add_node(f.as_str())))
            .collect();
        for (from, to) in self.edges.keys() {
            g.add_edge(nodes[from.as_str()], nodes[to.as_str()], ());
        }
        let mut cycles: Vec<Cycle> = tarjan_scc(&g)
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .map(|scc| {
                let mut files: Vec<String> = scc.iter().map(|n| g[*n].to_string()).collect();
                files.sort();
                let walk = self.loop_through(&files);
                let inside = self
                    .edges
                    .iter()
                    .filter(|((from, to), _)| files.contains(from) && files.contains(to))
                    .map(|((from, to), path)| (from.clone(), to.clone(), path.clone()))
                    .collect();
                Cycle {
                    files,
                    walk,
                    inside,
                }
            })
            .collect();
        cycles.sort_by(|a, b| a.files.cmp(&b.files));
        cycles
    }

    /// A shortest loop from the component's first file back to itself.
    fn loop_through(&self, component: &[String]) -> Vec<(String, String, String)> {
        let inside: HashSet<&str> = component.iter().map(String::as_str).collect();
        let start = component[0].as_str();
        let mut came_from: HashMap<&str, &str> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(at) = queue.pop_front() {
            for (from, to) in self.edges.keys() {
                if from != at || !inside.contains(to.as_str()) {
                    continue;
                }
                if to == start {
                    last = Some(at);
                    break 'search;
                }
                if !came_from.contains_key(to.as_str()) {
                    came_from.insert(to, at);
                    queue.push_back(to);
                }
            }
        }
        let mut steps = Vec::new();
        let mut to = start;
        let mut from = last.expect("a strongly connected component has a loop");
        loop {
            let path = &self.edges[&(from.to_string(), to.to_string())];
            steps.push((from.to_string(), to.to_string(), path.clone()));
            if from == start {
                break;
            }
            to = from;
            from = came_from[from];
        }
        steps.reverse();
        steps
    }
}

// ---- parsing and name resolution ---------------------------------------------

struct Builder {
    root: PathBuf,
    files: Vec<String>,
    modules: Vec<Module>,
    /// Files declared under `#[cfg(test)]`.
    test_files: HashSet<String>,
    /// The library's root module, which the binary names `permitsync`.
    library: Option<usize>,
}

impl Builder {
    fn load_root(&mut self, path: &Path) -> usize {
        let file = self.add_file(path);
        let id = self.modules.len();
        self.modules.push(Module::new(file, None, id));
        let ast = parse(path);
        self.load_items(id, &ast.items, path.parent().expect("src/"));
        id
    }

    fn add_file(&mut self, path: &Path) -> usize {
        self.files.push(relative(&self.root, path));
        self.files.len() - 1
    }

    /// Record the items of module `m`; `dir` is where its child module files live.
    fn load_items(&mut self, m: usize, items: &[syn::Item], dir: &Path) {
        for item in items {
            if is_test_only(item_attrs(item)) {
                if let syn::Item::Mod(md) = item {
                    if md.content.is_none() {
                        let path = child_file(dir, &md.ident.to_string());
                        self.test_files.insert(relative(&self.root, &path));
                    }
                }
                continue;
            }
            match item {
                syn::Item::Mod(md) => self.load_child(m, md, dir),
                syn::Item::Use(u) => {
                    let mut bound = Vec::new();
                    flatten_use(&u.tree, &mut Vec::new(), &mut bound);
                    let reexport = !matches!(u.vis, syn::Visibility::Inherited);
                    for (name, path) in bound {
                        if !reexport {
                            self.modules[m].refs.push(path.clone());
                        }
                        self.modules[m].imports.push((name, path));
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        self.modules[m].items.insert(name);
                    }
                    let mut refs = Refs::default();
                    refs.visit_item(other);
                    self.modules[m].refs.extend(refs.paths);
                }
            }
        }
    }

    fn load_child(&mut self, m: usize, md: &syn::ItemMod, dir: &Path) {
        let name = md.ident.to_string();
        let root = self.modules[m].root;
        match &md.content {
            Some((_, items)) => {
                let id = self.modules.len();
                let file = self.modules[m].file;
                self.modules.push(Module::new(file, Some(m), root));
                self.modules[m].children.insert(name.clone(), id);
                self.load_items(id, items, &dir.join(&name));
            }
            None => {
                let path = child_file(dir, &name);
                let file = self.add_file(&path);
                let id = self.modules.len();
                self.modules.push(Module::new(file, Some(m), root));
                self.modules[m].children.insert(name.clone(), id);
                let ast = parse(&path);
                self.load_items(id, &ast.items, &dir.join(&name));
            }
        }
    }

    /// What `path`, written in module `m`, names.
    fn resolve(&self, m: usize, path: &[String], depth: usize) -> Option<Target> {
        if depth > 32 {
            return None; // a glob loop: nothing more to find
        }
        let (first, rest) = path.split_first()?;
        let mut at = match first.as_str() {
            "crate" => Target::Module(self.modules[m].root),
            "self" => Target::Module(m),
            "super" => Target::Module(self.modules[m].parent?),
            "permitsync" if self.modules[m].root != self.library? => Target::Module(self.library?),
            name => self.lookup(m, name, depth)?,
        };
        for seg in rest {
            let Target::Module(module) = at else {
                break; // an enum variant or an associated item: the item's file
            };
            at = match seg.as_str() {
                "super" => Target::Module(self.modules[module].parent?),
                "self" => Target::Module(module),
                name => self.lookup(module, name, depth)?,
            };
        }
        Some(at)
    }

    /// The name `name` in the scope of module `m`.
    fn lookup(&self, m: usize, name: &str, depth: usize) -> Option<Target> {
        let module = &self.modules[m];
        if let Some(&child) = module.children.get(name) {
            return Some(Target::Module(child));
        }
        if module.items.contains(name) {
            return Some(Target::Item(m));
        }
        for (bound, path) in &module.imports {
            if bound.as_deref() == Some(name) {
                if let Some(found) = self.resolve(m, path, depth + 1) {
                    return Some(found);
                }
            }
        }
        for (bound, path) in &module.imports {
            if bound.is_none() {
                if let Some(Target::Module(g)) = self.resolve(m, path, depth + 1) {
                    if let Some(found) = self.lookup(g, name, depth + 1) {
                        return Some(found);
                    }
                }
            }
        }
        None
    }
}

impl Module {
    fn new(file: usize, parent: Option<usize>, root: usize) -> Module {
        Module {
            file,
            parent,
            root,
            children: HashMap::new(),
            items: HashSet::new(),
            imports: Vec::new(),
            refs: Vec::new(),
        }
    }
}

/// Paths named by code (not by `mod`-level `use`, which [`Builder`] reads).
#[derive(Default)]
struct Refs {
    paths: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Refs {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            // a lone name is a local, a generic or an item in scope; a lone
            // child module name is no valid path in code
            self.paths.push(segs);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        // a `use` inside a function body
        let mut bound = Vec::new();
        flatten_use(&u.tree, &mut Vec::new(), &mut bound);
        self.paths.extend(bound.into_iter().map(|(_, p)| p));
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test_only(item_attrs(item)) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Fn(f) => &f.attrs[..],
            syn::ImplItem::Const(c) => &c.attrs[..],
            syn::ImplItem::Type(t) => &t.attrs[..],
            _ => &[],
        };
        if !is_test_only(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(super)`, `pub(crate)`: who may see an item, not what it uses
    }

    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {
        // `#[derive(..)]`, `#[serde(..)]`: not paths into the crate
    }
}

/// The (bound name, full path) pairs of a use tree; `None` for a glob.
fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Option<String>, Vec<String>)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                // `use a::b::{self}` binds `b`
                if let Some(last) = prefix.last() {
                    out.push((Some(last.clone()), prefix.clone()));
                }
            } else {
                let mut path = prefix.clone();
                path.push(name.clone());
                out.push((Some(name), path));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push((Some(r.rename.to_string()), path));
        }
        syn::UseTree::Glob(_) => out.push((None, prefix.clone())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix, out);
            }
        }
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        _ => return None,
    };
    Some(ident.to_string())
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]` exactly (the only test gate `src/` uses).
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// The file of child module `name` declared by a module whose children live in `dir`.
fn child_file(dir: &Path, name: &str) -> PathBuf {
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        flat
    } else {
        dir.join(name).join("mod.rs")
    }
}

fn parse(path: &Path) -> syn::File {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read a source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}
