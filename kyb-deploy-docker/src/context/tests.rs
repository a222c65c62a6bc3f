use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn ignore(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text).unwrap()
}

#[test]
fn wildcards_follow_docker() {
    let i = ignore("*.md\n");
    assert!(i.excludes("README.md"));
    assert!(!i.excludes("docs/guide.md"), "* does not cross a directory");

    let i = ignore("**/*.md\n");
    assert!(i.excludes("README.md"));
    assert!(i.excludes("docs/deep/guide.md"));
    assert!(!i.excludes("docs/guide.mdx"));

    let i = ignore("docs/**\n");
    assert!(i.excludes("docs/a/b.txt"));
    assert!(!i.excludes("docsx"));

    let i = ignore("a/**/b\n");
    assert!(i.excludes("a/b"));
    assert!(i.excludes("a/x/y/b"));
    assert!(!i.excludes("a/xb"));

    let i = ignore("file?.txt\n[abc]-[0-9].log\n[^x]y\n");
    assert!(i.excludes("file1.txt"));
    assert!(!i.excludes("file10.txt"));
    assert!(i.excludes("b-7.log"));
    assert!(!i.excludes("d-7.log"));
    assert!(i.excludes("ay"));
    assert!(!i.excludes("xy"));
}

#[test]
fn directories_exclude_their_contents_and_exceptions_win_when_later() {
    let i = ignore("# build output\n\n/target/\n!target/release/app\n  \n.git\n");
    assert!(i.excludes("target"));
    assert!(i.excludes("target/debug/app"));
    assert!(!i.excludes("target/release/app"));
    assert!(i.excludes("target/release/other"));
    assert!(i.excludes(".git/HEAD"));
    assert!(!i.excludes("src/main.rs"));

    // The last matching line decides.
    let i = ignore("!keep.txt\n*.txt\n");
    assert!(i.excludes("keep.txt"));
    let i = ignore("*.txt\n!keep.txt\n");
    assert!(!i.excludes("keep.txt"));
}

#[test]
fn comments_escapes_and_cleaning() {
    let i = ignore("#secret.txt\n\\#hash\n./a/../b\n \\*star\n");
    assert!(!i.excludes("secret.txt"), "a # line is a comment");
    assert!(i.excludes("#hash"));
    assert!(i.excludes("b"));
    assert!(i.excludes("*star"));
    assert!(!i.excludes("xstar"));
}

#[test]
fn invalid_patterns_are_reported_with_their_line() {
    let err = DockerIgnore::parse("ok\n[abc\n").unwrap_err();
    assert!(err.contains("line 2") && err.contains("[abc"), "{err}");
    assert!(DockerIgnore::parse("x\\").is_err());
}

#[test]
fn pruning_keeps_only_directories_an_exception_can_reach() {
    let i = ignore("target/\n!target/x86_64-unknown-linux-gnu/release/app\n");
    assert!(i.may_include_below("target"));
    assert!(i.may_include_below("target/x86_64-unknown-linux-gnu"));
    assert!(i.may_include_below("target/x86_64-unknown-linux-gnu/release"));
    assert!(!i.may_include_below("target/debug"));
    assert!(!i.may_include_below("target/x86_64-unknown-linux-gnu/debug"));

    let i = ignore("target\n!target/*/release/app\n");
    assert!(i.may_include_below("target"));
    assert!(i.may_include_below("target/anything"));
    assert!(!ignore("target\n").may_include_below("target"));
}

/// An in-memory tree: relative path -> is a directory.
#[derive(Clone, Debug)]
struct MemEntry {
    rel: String,
    dir: bool,
}

impl WalkEntry for MemEntry {
    fn rel(&self) -> &str {
        &self.rel
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
}

fn tree(files: &[String]) -> BTreeMap<String, bool> {
    let mut tree = BTreeMap::new();
    for file in files {
        let mut prefix = String::new();
        let parts: Vec<&str> = file.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let is_dir = i + 1 < parts.len();
            // A path that has something below it is a directory.
            tree.entry(prefix.clone())
                .and_modify(|dir| *dir |= is_dir)
                .or_insert(is_dir);
        }
    }
    tree
}

/// Walks a tree, returning the emitted paths and the directories listed.
fn walk(ignore: &DockerIgnore, tree: &BTreeMap<String, bool>) -> (Vec<String>, Vec<String>) {
    let mut listed = Vec::new();
    let mut emitted = Vec::new();
    visit(
        ignore,
        "",
        &mut |dir: &str| {
            listed.push(dir.to_owned());
            Ok(tree
                .iter()
                .filter(|(rel, _)| match rel.rsplit_once('/') {
                    Some((parent, _)) => parent == dir,
                    None => dir.is_empty(),
                })
                .map(|(rel, dir)| MemEntry {
                    rel: rel.clone(),
                    dir: *dir,
                })
                .collect())
        },
        &mut |e: &MemEntry| {
            emitted.push(e.rel.clone());
            Ok(())
        },
    )
    .unwrap();
    (emitted, listed)
}

#[test]
fn the_walk_never_lists_an_excluded_build_directory() {
    let files: Vec<String> = [
        "Cargo.toml",
        "src/main.rs",
        "target/debug/deps/libhuge.rlib",
        "target/debug/build/x/out",
        "target/x86_64-unknown-linux-gnu/release/kyb-sample-api",
        "target/x86_64-unknown-linux-gnu/release/deps/big.rlib",
        "target/x86_64-unknown-linux-gnu/debug/kyb-sample-api",
        ".git/objects/ab/cdef",
        "snap/a.snap.new",
    ]
    .map(String::from)
    .to_vec();
    let i = ignore(
        ".git\ntarget/\n!target/x86_64-unknown-linux-gnu/release/kyb-sample-api\n**/*.snap.new\n",
    )
    .always_include("Dockerfile")
    .always_include(".dockerignore");
    let tree = tree(&files);
    let (emitted, listed) = walk(&i, &tree);
    let emitted_files: Vec<&str> = emitted
        .iter()
        .filter(|p| !tree[*p])
        .map(String::as_str)
        .collect();
    assert_eq!(
        emitted_files,
        [
            "Cargo.toml",
            "src/main.rs",
            "target/x86_64-unknown-linux-gnu/release/kyb-sample-api"
        ]
    );
    for pruned in [
        ".git",
        "target/debug",
        "target/x86_64-unknown-linux-gnu/debug",
        "target/x86_64-unknown-linux-gnu/release/deps",
    ] {
        assert!(
            !listed.iter().any(|l| l == pruned),
            "{pruned} was listed: {listed:?}"
        );
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "ab", "x.md", "c"]).prop_map(String::from)
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..5).prop_map(|s| s.join("/"))
}

fn pattern() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec!["a", "b", "ab", "*", "?", "**", "[ab]", "x.md", "*.md"]);
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(piece, 1..4),
    )
        .prop_map(|(negate, rooted, pieces)| {
            format!(
                "{}{}{}",
                if negate { "!" } else { "" },
                if rooted { "/" } else { "" },
                pieces.join("/")
            )
        })
}

proptest! {
    /// Pruning is only an optimisation: the walk emits exactly the paths that are not
    /// excluded, and never emits an excluded one.
    #[test]
    fn pruned_walk_equals_full_matching(
        files in prop::collection::vec(path(), 1..12),
        patterns in prop::collection::vec(pattern(), 0..5),
    ) {
        let i = ignore(&patterns.join("\n"));
        let tree = tree(&files);
        let (emitted, _) = walk(&i, &tree);
        let expected: Vec<String> =
            tree.keys().filter(|p| !i.excludes(p)).cloned().collect();
        let emitted: BTreeSet<String> = emitted.into_iter().collect();
        prop_assert_eq!(emitted, expected.into_iter().collect::<BTreeSet<_>>());
    }

    /// A pattern without wildcards matches its own path and everything below it, and
    /// nothing else.
    #[test]
    fn literal_patterns_match_themselves_and_below(p in path(), other in path()) {
        let i = ignore(&p);
        prop_assert!(i.excludes(&p));
        let below = format!("{}/{}", p, other);
        prop_assert!(i.excludes(&below));
        let expected = other == p || other.starts_with(&format!("{}/", p));
        prop_assert_eq!(i.excludes(&other), expected);
    }

    /// `*` never crosses a directory; `**/` matches at any depth.
    #[test]
    fn stars_and_double_stars(p in path(), name in segment()) {
        let single = ignore(&format!("*/{}", name));
        let depth = p.split('/').count();
        let nested = format!("{}/{}", p, name);
        // Directly below a top-level directory, or anything below such a match.
        let expected = depth == 1 || p.split('/').nth(1) == Some(name.as_str());
        prop_assert_eq!(single.excludes(&nested), expected);
        let anywhere = ignore(&format!("**/{}", name));
        prop_assert!(anywhere.excludes(&nested));
    }
}

#[test]
fn the_context_tar_holds_what_is_not_ignored_and_symlinks_as_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(
        root.join(".dockerignore"),
        "secret.txt\nbuild\n!build/keep\nDockerfile\n",
    )
    .unwrap();
    fs::write(root.join("secret.txt"), "hunter2").unwrap();
    fs::write(root.join("app.txt"), "app").unwrap();
    fs::create_dir_all(root.join("build/sub")).unwrap();
    fs::write(root.join("build/keep"), "kept").unwrap();
    fs::write(root.join("build/sub/drop"), "dropped").unwrap();
    std::os::unix::fs::symlink("app.txt", root.join("link")).unwrap();

    let (bytes, summary) = write_context(root, Path::new("Dockerfile"), Vec::new()).unwrap();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut seen = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        assert_eq!(entry.header().uid().unwrap(), 0);
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        seen.insert(name, (kind, link, content));
    }
    let names: Vec<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            ".dockerignore",
            "Dockerfile",
            "app.txt",
            "build/keep",
            "link"
        ]
    );
    assert_eq!(seen["build/keep"].2, "kept");
    assert!(seen["link"].0.is_symlink());
    assert_eq!(seen["link"].1.as_deref(), Some("app.txt"));
    assert_eq!(summary.files, 4);
}

#[test]
fn an_invalid_dockerignore_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".dockerignore"), "[oops\n").unwrap();
    let err = write_context(dir.path(), Path::new("Dockerfile"), Vec::new()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(".dockerignore") && text.contains("line 1"),
        "{text}"
    );
}
