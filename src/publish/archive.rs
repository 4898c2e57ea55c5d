//! Archive sinks: `oci-archive:FILE` (a tar of an OCI image layout) and
//! `docker-archive:FILE[:NAME:TAG]` (the `docker save` format, one platform, loadable
//! by `docker load` and `podman load`), plus safe unpacking of layout archives.
//!
//! Archives are written to a temporary file beside the target and renamed into place,
//! with fixed tar metadata so the same image gives the same archive bytes.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use hoist_layers::{Digest, open_blob, sweep_temp_files};
use serde_json::json;

use super::{WriteReport, effective_tags, index_json, tagged_entries};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{check_file_target, parent_dir, temp_file_in};
use crate::oci::image::{Blob, BlobSource, Image, PlatformImage};
use crate::oci::layout::OCI_LAYOUT_FILE;
use crate::oci::media;
use crate::oci::model::Index;
use crate::tar_reader::{TarError, TarReader};

/// Writes a tar of an OCI image layout.
pub struct OciArchiveSink {
    /// The archive file.
    pub path: PathBuf,
    /// The tag from the location, if any.
    pub tag: Option<String>,
}

/// Writes a `docker save` style archive.
pub struct DockerArchiveSink {
    /// The archive file.
    pub path: PathBuf,
    /// `name:tag` for `RepoTags`.
    pub reference: Option<String>,
}

impl super::Sink for OciArchiveSink {
    fn preflight(&self) -> Result<()> {
        check_file_target(&self.path)
    }

    fn write(&self, image: &Image, tags: &[String]) -> Result<WriteReport> {
        let tags = effective_tags(self.tag.as_deref(), tags);
        let mut index = Index::new(Some(media::OCI_INDEX));
        // One entry only: `podman load` and skopeo's `oci-archive:` without a name take
        // an archive's image only when index.json lists exactly one; the SBOMs stay
        // out (they are in layouts and registries).
        index.manifests = tagged_entries(image, &tags);
        let index_json = index_json(&index, &self.path)?;
        let digests = image.blob_order();
        write_archive(&self.path, |tar| {
            tar.file("oci-layout", OCI_LAYOUT_FILE.as_bytes())?;
            tar.dir("blobs/")?;
            tar.dir("blobs/sha256/")?;
            let mut bytes = 0;
            for digest in &digests {
                bytes += tar.blob(digest, &image.blobs[*digest])?;
            }
            // index.json last: a reader streaming the archive sees blobs before the
            // document that names them.
            tar.file("index.json", &index_json)?;
            Ok(bytes)
        })
        .map(|bytes_written| WriteReport {
            bytes_written,
            target: format!("oci-archive:{}", self.path.display()),
        })
    }
}

impl super::Sink for DockerArchiveSink {
    fn preflight(&self) -> Result<()> {
        check_file_target(&self.path)
    }

    fn write(&self, image: &Image, tags: &[String]) -> Result<WriteReport> {
        let [platform] = image.platforms.as_slice() else {
            return Err(output_error(
                &self.path,
                &format!(
                    "a docker archive holds one platform and this build has {}: choose one with --platform",
                    image.platforms.len()
                ),
            ));
        };
        let repo_tags: Vec<String> = match (&self.reference, &image.name) {
            (Some(reference), _) => vec![reference.clone()],
            (None, Some(name)) => effective_tags(None, tags)
                .into_iter()
                .map(|tag| format!("{name}:{tag}"))
                .collect(),
            (None, None) => Vec::new(),
        };
        let archive = DockerArchive::new(image, platform, &repo_tags, &self.path)?;
        write_archive(&self.path, |tar| archive.fill(tar)).map(|bytes_written| WriteReport {
            bytes_written,
            target: format!("docker-archive:{}", self.path.display()),
        })
    }
}

/// Writes `platform` of `image` as a docker archive (`docker save` format) naming it
/// `repo_tags` into `out` as it goes, with no file in between: `podman load` or
/// `docker load` reading it on stdin. `name` is what errors call the destination.
/// Returns the blob bytes written.
pub fn stream_docker_archive(
    image: &Image,
    platform: &PlatformImage,
    repo_tags: &[String],
    out: impl Write,
    name: &Path,
) -> Result<u64> {
    let archive = DockerArchive::new(image, platform, repo_tags, name)?;
    let mut writer = ArchiveWriter {
        builder: tar::Builder::new(BufWriter::new(out)),
        path: name.to_path_buf(),
    };
    let bytes = archive.fill(&mut writer)?;
    writer.builder.into_inner().at(name)?.flush().at(name)?;
    Ok(bytes)
}

/// One platform image as a docker archive: its blobs and `manifest.json`.
struct DockerArchive<'a> {
    image: &'a Image,
    platform: &'a PlatformImage,
    manifest_json: Vec<u8>,
}

impl<'a> DockerArchive<'a> {
    /// Refuses a foreign layer (a docker archive holds every layer's bytes).
    fn new(
        image: &'a Image,
        platform: &'a PlatformImage,
        repo_tags: &[String],
        path: &Path,
    ) -> Result<DockerArchive<'a>> {
        let manifest = &platform.manifest;
        let mut layers = Vec::new();
        for layer in &manifest.layers {
            if !image.blobs.contains_key(&layer.digest) {
                return Err(output_error(
                    path,
                    &format!(
                        "layer {} is a foreign layer, which docker archives cannot hold",
                        layer.digest
                    ),
                ));
            }
            layers.push(blob_path(&layer.digest));
        }
        let manifest_json = serde_json::to_vec(&json!([{
            "Config": blob_path(&manifest.config.digest),
            "RepoTags": repo_tags,
            "Layers": layers,
        }]))
        .expect("plain JSON serialises");
        Ok(DockerArchive {
            image,
            platform,
            manifest_json,
        })
    }

    /// The blobs (layers, then the config), each once, then `manifest.json`.
    fn fill<W: Write>(&self, tar: &mut ArchiveWriter<W>) -> Result<u64> {
        let manifest = &self.platform.manifest;
        tar.dir("blobs/")?;
        tar.dir("blobs/sha256/")?;
        let mut bytes = 0;
        let mut seen: Vec<&Digest> = Vec::new();
        for digest in manifest
            .layers
            .iter()
            .map(|l| &l.digest)
            .chain(std::iter::once(&manifest.config.digest))
        {
            if !seen.contains(&digest) {
                seen.push(digest);
                bytes += tar.blob(digest, &self.image.blobs[digest])?;
            }
        }
        tar.file("manifest.json", &self.manifest_json)?;
        Ok(bytes)
    }
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

fn output_error(path: &Path, reason: &str) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A tar being written with fixed metadata (uid/gid 0, mtime 0, 0644/0755).
struct ArchiveWriter<W: Write> {
    builder: tar::Builder<W>,
    path: PathBuf,
}

impl<W: Write> ArchiveWriter<W> {
    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    }

    fn dir(&mut self, name: &str) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, 0);
        self.builder
            .append_data(&mut header, name, io::empty())
            .at(&self.path)
    }

    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, bytes.len() as u64);
        self.builder
            .append_data(&mut header, name, bytes)
            .at(&self.path)
    }

    /// Appends a blob, its bytes checked against its digest as they are copied
    /// (without hashing again what this run has already checked). A mismatch fails
    /// the whole archive, which is still a temp file then: nothing bad is renamed
    /// into place.
    fn blob(&mut self, digest: &Digest, blob: &Blob) -> Result<u64> {
        let name = blob_path(digest);
        let mut header = Self::header(tar::EntryType::Regular, blob.size);
        match &blob.source {
            BlobSource::Bytes(bytes) => self
                .builder
                .append_data(&mut header, &name, bytes.as_slice())
                .at(&self.path)?,
            BlobSource::Trusted(source)
            | BlobSource::Unverified(source)
            | BlobSource::OnDemand(source) => {
                let mut reader = open_blob(source, digest, blob.size)?.reader();
                self.builder
                    .append_data(&mut header, &name, &mut reader)
                    .at(source)?;
                reader.finish().map_err(|e| {
                    output_error(&self.path, &format!("not written, blob {digest}: {e}"))
                })?;
            }
        }
        Ok(blob.size)
    }
}

/// Writes an archive through a temporary file beside `path`, renamed on success.
fn write_archive(
    path: &Path,
    fill: impl FnOnce(&mut ArchiveWriter<BufWriter<&File>>) -> Result<u64>,
) -> Result<u64> {
    check_file_target(path)?;
    // An archive run killed mid-write left its temp file here: hundreds of MB.
    sweep_temp_files(parent_dir(path));
    let temp = temp_file_in(parent_dir(path))?;
    let bytes = {
        let mut writer = ArchiveWriter {
            builder: tar::Builder::new(BufWriter::new(temp.as_file())),
            path: path.to_path_buf(),
        };
        let bytes = fill(&mut writer)?;
        let mut inner = writer.builder.into_inner().at(path)?;
        inner.flush().at(path)?;
        bytes
    };
    temp.as_file().sync_all().at(path)?;
    temp.persist(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(bytes)
}

/// Unpacks an OCI layout archive into `dir`, accepting only plain files and
/// directories with relative paths that stay inside it.
pub fn unpack_layout_archive(archive: &Path, dir: &Path) -> Result<()> {
    unpack_archive(archive, dir, None)
}

/// Unpacks a tar archive into `dir` as [`unpack_layout_archive`] does; with `links`,
/// symbolic links are recorded there (link path → target, as written) instead of
/// refused, and never created on disk: `docker save`'s legacy form links layers.
pub fn unpack_archive(
    archive: &Path,
    dir: &Path,
    mut links: Option<&mut std::collections::BTreeMap<PathBuf, PathBuf>>,
) -> Result<()> {
    let file = File::open(archive).at(archive)?;
    let fail = |reason: String| Error::Layout {
        path: archive.to_path_buf(),
        reason,
    };
    let tar_error = |e: TarError| fail(e.to_string());
    fs::create_dir_all(dir).at(dir)?;
    let mut tar = TarReader::new(io::BufReader::with_capacity(256 * 1024, file));
    while let Some(header) = tar.next_header().map_err(tar_error)? {
        let name = PathBuf::from(&header.raw_path);
        if name
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(fail(format!(
                "entry {} escapes the archive (absolute or ..)",
                name.display()
            )));
        }
        let target = dir.join(&name);
        match header.kind {
            tar::EntryType::Directory => fs::create_dir_all(&target).at(&target)?,
            tar::EntryType::Regular => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).at(parent)?;
                }
                let mut out = File::create(&target).at(&target)?;
                io::copy(&mut tar, &mut out).at(&target)?;
            }
            tar::EntryType::Symlink if links.is_some() => {
                let target = header
                    .link
                    .ok_or_else(|| fail(format!("link {} has no target", name.display())))?;
                if let Some(links) = links.as_deref_mut() {
                    links.insert(name, PathBuf::from(target));
                }
            }
            other => {
                return Err(fail(format!(
                    "entry {} is a {other:?}, not a file or directory",
                    name.display()
                )));
            }
        }
    }
    Ok(())
}
