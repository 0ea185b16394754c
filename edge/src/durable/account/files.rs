//! The account's files: uploads (deduplicated by their SHA-256: the same bytes twice
//! are one file) and outputs, listed newest first. The bytes live in R2; this is the
//! index that says whose they are.

use kiln_shared::{ApiError, ErrorCode};

use super::proto::*;
use super::AccountDo;
use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;

const COLUMNS: &str = "filename, kind, sha256, format, content_type, width, height, frame_count,
    size_bytes, original_filename, job_id, created_at_ms, expires_at_ms";

impl AccountDo {
    fn files_where(
        &self,
        clause: &str,
        args: Vec<worker::SqlStorageValue>,
    ) -> EdgeResult<Vec<FileRecord>> {
        Ok(self
            .sql
            .exec(&format!("SELECT {COLUMNS} FROM files {clause}"), args)?
            .to_array()?)
    }

    fn insert_file(&self, f: &FileRecord, kind: FileKind) -> EdgeResult<()> {
        self.sql.exec(
            &format!(
                "INSERT INTO files ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (filename) DO NOTHING"
            ),
            vec![
                f.filename.as_str().into(),
                kind.as_str().into(),
                f.sha256.as_str().into(),
                f.format.as_str().into(),
                f.content_type.as_str().into(),
                i64::from(f.width).into(),
                i64::from(f.height).into(),
                i64::from(f.frame_count).into(),
                i64::try_from(f.size_bytes).unwrap_or(i64::MAX).into(),
                f.original_filename.clone().into(),
                f.job_id.clone().into(),
                f.created_at_ms.into(),
                f.expires_at_ms.into(),
            ],
        )?;
        Ok(())
    }

    pub(super) fn record_outputs(&self, body: RecordOutputs) -> EdgeResult<Done> {
        self.account()?;
        for f in &body.files {
            self.insert_file(f, FileKind::Output)?;
        }
        Ok(Done)
    }

    pub(super) fn record_upload(&self, body: RecordUpload) -> EdgeResult<Recorded> {
        self.account()?;
        let f = body.file;
        let existing = self.files_where(
            "WHERE kind = ? AND sha256 = ? AND expires_at_ms > ? LIMIT 1",
            vec![
                FileKind::Upload.as_str().into(),
                f.sha256.as_str().into(),
                now_ms().into(),
            ],
        )?;
        if let Some(file) = existing.into_iter().next() {
            return Ok(Recorded {
                file,
                deduplicated: true,
            });
        }
        self.insert_file(&f, FileKind::Upload)?;
        Ok(Recorded {
            file: FileRecord {
                kind: FileKind::Upload,
                ..f
            },
            deduplicated: false,
        })
    }

    pub(super) fn list_files(&self, body: ListFiles) -> EdgeResult<Files> {
        let mut files = self.files_where(
            "WHERE kind = ? AND expires_at_ms > ? ORDER BY created_at_ms DESC, filename DESC
             LIMIT ? OFFSET ?",
            vec![
                body.kind.as_str().into(),
                now_ms().into(),
                (i64::from(body.limit) + 1).into(),
                i64::from(body.offset).into(),
            ],
        )?;
        let has_more = files.len() > body.limit as usize;
        files.truncate(body.limit as usize);
        Ok(Files { files, has_more })
    }

    pub(super) fn own_files(&self, body: OwnFiles) -> EdgeResult<Owned> {
        let mut files = Vec::with_capacity(body.filenames.len());
        for name in &body.filenames {
            let found = self.files_where("WHERE filename = ?", vec![name.as_str().into()])?;
            let Some(file) = found.into_iter().next() else {
                return Err(ApiError::forbidden(
                    ErrorCode::FileNotYours,
                    format!(
                        "{name:?} is not one of your files; use the `filename` of one of your uploads or outputs."
                    ),
                )
                .with_param("input_files")
                .into());
            };
            if file.expires_at_ms <= now_ms() {
                return Err(ApiError::new(
                    410,
                    ErrorCode::Expired,
                    format!("{name:?} has expired; upload it again."),
                )
                .with_param("input_files")
                .into());
            }
            files.push(file);
        }
        Ok(Owned { files })
    }

    pub(super) fn delete_file(&self, body: DeleteFile) -> EdgeResult<FileRecord> {
        // The name is the filename, or the id: the filename up to its extension.
        let found = self.files_where(
            "WHERE kind = ?1 AND (filename = ?2 OR substr(filename, 1, length(?2) + 1) = ?2 || '.')",
            vec![body.kind.as_str().into(), body.name.as_str().into()],
        )?;
        let Some(file) = found.into_iter().next() else {
            return Err(ApiError::not_found(
                ErrorCode::FileNotFound,
                "You have no file with this name.",
            )
            .into());
        };
        self.sql.exec(
            "DELETE FROM files WHERE filename = ?",
            vec![file.filename.as_str().into()],
        )?;
        Ok(file)
    }
}
