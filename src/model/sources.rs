//! Where the load stage gets its bytes: a [`SourceProvider`] answers "the bytes at this path"
//! for the model file and every data file it names (the SAM, the CSV files of `[sets]` and
//! `[tables]`). Two providers exist: the file system, and files embedded in the binary
//! ([`BUILT_IN`]: the flagship model and its SAM), so that an installed `tokencge` runs the
//! flagship from any directory through the very same load → validate path as a file on disk.
//!
//! Embedded files live under a virtual root, [`BUILT_IN_ROOT`] (`built-in:/models/…`): the
//! path names them in every diagnostic, anchors the model's relative data paths as a directory
//! would (`../data/x.csv` resolves inside the embedded tree), and survives being recorded (a run
//! bundle's `run.json`, a sweep's plan), so `tokencge report DIR` and a resumed sweep find the
//! built-in model again. [`provider_for`] routes a path to the provider it belongs to.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Reads the bytes of the files a model consists of.
pub trait SourceProvider: Sync {
    /// The bytes at `path`: the model's own path, or its directory joined with a data file's
    /// path as written in the model.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
}

/// The file system: paths are read as they are (relative to the current directory).
pub struct FileSystem;

impl SourceProvider for FileSystem {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// Files embedded in the binary under a virtual root: `(path relative to the root, bytes)`.
pub struct Embedded {
    root: &'static str,
    files: &'static [(&'static str, &'static [u8])],
}

impl Embedded {
    /// The path under which the embedded file `relative` is read.
    pub fn path(&self, relative: &str) -> PathBuf {
        Path::new(self.root).join(relative)
    }

    /// The embedded files: path relative to the root, bytes.
    pub fn files(&self) -> &'static [(&'static str, &'static [u8])] {
        self.files
    }

    /// The path relative to the root, `..` and `.` resolved lexically (there is no directory
    /// to ask), when `path` lies under the root.
    fn relative(&self, path: &Path) -> Option<String> {
        let rest = path.strip_prefix(self.root).ok()?;
        let mut parts: Vec<&str> = Vec::new();
        for c in rest.components() {
            match c {
                Component::Normal(p) => parts.push(p.to_str()?),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop()?;
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        Some(parts.join("/"))
    }

    /// True when `path` lies under this provider's root (whether or not the file exists).
    pub fn owns(&self, path: &Path) -> bool {
        path.starts_with(self.root)
    }
}

impl SourceProvider for Embedded {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let relative = self.relative(path);
        self.files
            .iter()
            .find(|(name, _)| Some(*name) == relative.as_deref())
            .map(|(_, bytes)| bytes.to_vec())
            .ok_or_else(|| {
                let known: Vec<&str> = self.files.iter().map(|(n, _)| *n).collect();
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "not a built-in file (built in: {})",
                        known
                            .iter()
                            .map(|n| format!("{}/{n}", self.root))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }
}

/// The virtual directory of the embedded files.
pub const BUILT_IN_ROOT: &str = "built-in:";

/// The flagship model's path relative to the repository (and to [`BUILT_IN_ROOT`]).
pub const FLAGSHIP: &str = "models/token_economy.toml";

/// The flagship model and every file it reads, embedded at build time. `include_bytes!` reads
/// the repository's files when the binary is compiled, so the embedded copy is the file on disk
/// of that build: they cannot drift (a test checks the list is complete: the built-in model
/// loads without touching the disk).
pub static BUILT_IN: Embedded = Embedded {
    root: BUILT_IN_ROOT,
    files: &[
        (FLAGSHIP, include_bytes!("../../models/token_economy.toml")),
        (
            "data/token_economy_sam.csv",
            include_bytes!("../../data/token_economy_sam.csv"),
        ),
    ],
};

/// The provider a path belongs to: [`BUILT_IN`] for a path under [`BUILT_IN_ROOT`], the file
/// system otherwise.
pub fn provider_for(path: &Path) -> &'static dyn SourceProvider {
    if BUILT_IN.owns(path) {
        &BUILT_IN
    } else {
        &FileSystem
    }
}

/// The path as recorded for people and tools: a file's absolute path (so that it is found
/// from any directory), a built-in file's path with `..` resolved; `path` itself when the file
/// system cannot resolve it.
pub fn canonical(path: &Path) -> PathBuf {
    if BUILT_IN.owns(path) {
        if let Some(relative) = BUILT_IN.relative(path) {
            return BUILT_IN.path(&relative);
        }
        return path.to_path_buf();
    }
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The built-in flagship's path (`built-in:/models/token_economy.toml`).
pub fn built_in_flagship() -> PathBuf {
    BUILT_IN.path(FLAGSHIP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_data_paths_resolve_inside_the_embedded_tree() {
        let model = built_in_flagship();
        let sam = model
            .parent()
            .unwrap()
            .join("../data/token_economy_sam.csv");
        let bytes = BUILT_IN.read(&sam).unwrap();
        assert_eq!(bytes, include_bytes!("../../data/token_economy_sam.csv"));
        assert_eq!(
            canonical(&sam),
            Path::new("built-in:/data/token_economy_sam.csv")
        );
        assert!(std::ptr::eq(
            provider_for(&sam) as *const dyn SourceProvider as *const u8,
            &BUILT_IN as *const Embedded as *const u8
        ));
    }

    #[test]
    fn a_path_leaving_the_root_or_not_embedded_is_not_found() {
        for p in ["built-in:/../etc/passwd", "built-in:/models/other.toml"] {
            let e = BUILT_IN.read(Path::new(p)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{p}");
            assert!(e
                .to_string()
                .contains("built-in:/models/token_economy.toml"));
        }
        // Anything else is the file system's.
        assert!(!BUILT_IN.owns(Path::new("models/token_economy.toml")));
    }
}
