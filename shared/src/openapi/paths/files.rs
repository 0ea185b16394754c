use serde_json::json;

use serde_json::{Map, Value};

use super::prelude::*;
use crate::files::ImageFormat;
use crate::ids::Filename;
use crate::openapi::schemas::list_properties;

/// Every media type `/outputs/{filename}` serves, from the extension
/// ([`Filename::content_type`]): the outputs' (`png`, `mp4`), the uploads' (one per
/// [`ImageFormat`]), and `application/octet-stream` for any other.
fn output_types() -> Vec<&'static str> {
    let mut extensions: Vec<&str> = vec!["png", "mp4"];
    extensions.extend(ImageFormat::ALL.iter().map(|f| f.extension()));
    extensions.push("bin");
    let mut types = Vec::new();
    for ext in extensions {
        let name = Filename::parse(&format!("file.{ext}")).expect("a filename");
        if !types.contains(&name.content_type()) {
            types.push(name.content_type());
        }
    }
    types
}

fn output_types_description() -> String {
    format!(
        "From the extension: {}.",
        output_types()
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The media types an upload may be (`encoding.contentType`: a comma-separated list).
pub(crate) fn upload_types() -> String {
    let mut types: Vec<&str> = ImageFormat::ALL.iter().map(|f| f.content_type()).collect();
    types.dedup();
    types.join(", ")
}

/// A `multipart/form-data` body (`schema`) whose part `image_part` is an upload
/// ([`upload_types`]).
pub(crate) fn upload_form(image_part: &str, schema: Value) -> Value {
    let mut form = json!({"multipart/form-data": {"schema": schema, "encoding": {}}});
    form["multipart/form-data"]["encoding"][image_part] = json!({"contentType": upload_types()});
    form
}

/// The body of `/outputs/{filename}`: the file's bytes, in each media type it can have.
fn output_content() -> Value {
    let mut content = Map::new();
    for t in output_types() {
        content.insert(
            t.to_owned(),
            json!({"schema": {"type": "string", "contentMediaType": t}}),
        );
    }
    Value::Object(content)
}

/// The headers of every answer that carries the file (or, for HEAD, would).
fn output_headers() -> Value {
    json!({
        "Content-Type": {
            "schema": {
                "type": "string"
            },
            "description": output_types_description()
        },
        "Cache-Control": {
            "schema": {
                "type": "string",
                "const": "public, max-age=31536000, immutable"
            }
        },
        "ETag": {
            "schema": {
                "type": "string"
            }
        },
        "Accept-Ranges": {
            "schema": {
                "type": "string",
                "const": "bytes"
            }
        },
        "Content-Length": {
            "schema": {
                "type": "integer"
            }
        }
    })
}

/// `filename` of `/outputs/{filename}`.
fn filename_param() -> Value {
    json!({
        "name": "filename",
        "in": "path",
        "required": true,
        "schema": {
            "type": "string",
            "maxLength": 128,
            "pattern": "^[a-z0-9_-]+\\.[a-z0-9]{1,5}$"
        }
    })
}

/// `If-None-Match` of `/outputs/{filename}`.
fn if_none_match_param() -> Value {
    json!({
        "name": "If-None-Match",
        "in": "header",
        "required": false,
        "schema": {
            "type": "string"
        },
        "description": "304 when equal to the file's ETag (exact string match; lists and weak tags are not matched)."
    })
}

/// The answers GET and HEAD `/outputs/{filename}` share (304, 404, 410, 500), with the
/// operation's own (`own`) over them.
fn output_responses(own: Value) -> Value {
    overlay(
        json!({
            "304": {
                "description": "Not modified (If-None-Match matched the ETag).",
                "headers": {
                    "ETag": {
                        "schema": {
                            "type": "string"
                        }
                    }
                }
            },
            "404": err(&[FileNotFound], json!({"description": "`file_not_found`: malformed filename or no such file."})),
            "410": err(&[Expired], json!({"description": "`expired`: past the file's `expires_at`."})),
            "500": {
                "$ref": "#/components/responses/InternalError"
            }
        }),
        own,
    )
}

/// `GET /outputs/{filename}`
pub(crate) fn get_output() -> Op {
    Op::new(
        Get,
        "/outputs/{filename}",
        Public,
        json!({
            "operationId": "getOutput",
            "tags": [
                "files"
            ],
            "summary": "A generated file",
            "description": "No authentication: output filenames contain the job id's 80 random bits and act as the capability. Files never change.",
            "parameters": [
                filename_param(),
                {
                    "name": "Range",
                    "in": "header",
                    "required": false,
                    "schema": {
                        "type": "string",
                        "examples": [
                            "bytes=0-99",
                            "bytes=100-",
                            "bytes=-100"
                        ]
                    },
                    "description": "One `bytes=` range (start-end, start-, or -suffix; the unit is case-insensitive). An end past the last byte is clamped to it. Other units, multiple ranges and values that are not digits are ignored (200 with the whole file)."
                },
                if_none_match_param()
            ],
            "responses": output_responses(json!({
                "200": {
                    "description": "The whole file.",
                    "headers": output_headers(),
                    "content": output_content()
                },
                "206": {
                    "description": "The requested range.",
                    "headers": overlay(output_headers(), json!({
                    "Content-Range": {
                        "schema": {
                            "type": "string"
                        },
                        "description": "`bytes start-end/size`"
                    }
                    })),
                    "content": output_content()
                },
                "416": err(&[RangeNotSatisfiable], json!({
                    "description": "`range_not_satisfiable`: the Range starts at or past the end of the file (however large the number), ends before it starts (`bytes=5-2`), is an empty suffix (`bytes=-0`), or the file is empty. In the error shape, type `invalid_request_error`.",
                    "headers": {
                        "Content-Range": {
                            "schema": {
                                "type": "string"
                            },
                            "description": "`bytes */size`"
                        }
                    }
                }))
            }))
        }),
    )
}

/// `HEAD /outputs/{filename}`
pub(crate) fn head_output() -> Op {
    Op::new(
        Head,
        "/outputs/{filename}",
        Public,
        json!({
            "operationId": "headOutput",
            "tags": [
                "files"
            ],
            "summary": "Headers of a generated file",
            "description": "No authentication: output filenames contain the job id's 80 random bits and act as the capability. Files never change.",
            "parameters": [
                filename_param(),
                if_none_match_param()
            ],
            "responses": output_responses(json!({
                "200": {
                    "description": "No body. With a satisfiable Range, Content-Length is the range's length but the status stays 200 and no Content-Range is sent.",
                    "headers": output_headers()
                }
            }))
        }),
    )
}

/// `POST /v1/uploads`
pub(crate) fn upload_file() -> Op {
    Op::new(
        Post,
        "/v1/uploads",
        Key,
        json!({
            "summary": "Upload an image (PNG, APNG, JPEG, WebP, GIF), recognised from its bytes",
            "operationId": "uploadFile",
            "requestBody": {
                "required": true,
                "content": upload_form(
                    "file",
                    json!({
                        "type": "object",
                        "required": [
                            "file"
                        ],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "The image; its format is read from the bytes, not from the part's `Content-Type` or name."
                            }
                        },
                        "additionalProperties": false
                    })
                )
            },
            "tags": [
                "files"
            ],
            "responses": {
                "200": {
                    "description": "The same bytes were uploaded before: that file, `deduplicated: true`.",
                    "content": json_body(schema_ref("File"))
                },
                "201": {
                    "description": "Stored.",
                    "content": json_body(schema_ref("File"))
                },
                "400": err(&[MissingParameter, UnknownParameter, InvalidValue, InvalidBody, ImageTooLarge, InvalidImage], json!({"description": "`missing_parameter` (no `file` field), `unknown_parameter` (any other field), `invalid_value` (more than one `file`), `invalid_body` (unreadable multipart), `image_too_large` (a decompression bomb), `invalid_image`."})),
                "413": err(&[PayloadTooLarge], json!({"description": "`payload_too_large`: over 20 MB."})),
                "415": err(&[UnsupportedMediaType], json!({"description": "`unsupported_media_type`: not multipart, or not PNG, APNG, JPEG, WebP or GIF."})),
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}

/// `GET /v1/uploads/mine`
pub(crate) fn list_uploads() -> Op {
    list_files(
        "/v1/uploads/mine",
        "listUploads",
        "Your uploads, newest first",
    )
}

/// `GET /v1/generations/mine`
pub(crate) fn list_generations() -> Op {
    list_files(
        "/v1/generations/mine",
        "listGenerations",
        "Your outputs, newest first",
    )
}

/// A page of your files: [`list_uploads`] and [`list_generations`] differ only in their
/// route.
fn list_files(path: &'static str, operation_id: &str, summary: &str) -> Op {
    Op::new(
        Get,
        path,
        Key,
        json!({
            "summary": summary,
            "operationId": operation_id,
            "parameters": [
                limit_param(20),
                {
                    "name": "offset",
                    "in": "query",
                    "required": false,
                    "schema": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 100000,
                        "default": 0
                    }
                }
            ],
            "tags": [
                "files"
            ],
            "responses": {
                "200": {
                    "description": "Newest first.",
                    "content": json_body(json!({
                        "type": "object",
                        "properties": overlay(list_properties("File"), json!({
                            "has_more": {
                                "type": "boolean"
                            }
                        }))
                    }))
                },
                "400": err(&[OutOfRange], json!({"description": "`out_of_range`: `limit` or `offset`."})),
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}

/// `DELETE /v1/uploads/{id}`
pub(crate) fn delete_upload() -> Op {
    delete_file("/v1/uploads/{id}", "deleteUpload", "id")
}

/// `DELETE /v1/generations/{filename}`
pub(crate) fn delete_generation() -> Op {
    delete_file("/v1/generations/{filename}", "deleteGeneration", "filename")
}

/// Deleting one of your files: [`delete_upload`] and [`delete_generation`] differ only in
/// their route (and the name of its parameter, `param`).
fn delete_file(path: &'static str, operation_id: &str, param: &str) -> Op {
    Op::new(
        Delete,
        path,
        Key,
        json!({
            "summary": "Delete one of your files now",
            "operationId": operation_id,
            "parameters": [
                {
                    "name": param,
                    "in": "path",
                    "required": true,
                    "schema": {
                        "type": "string"
                    }
                }
            ],
            "tags": [
                "files"
            ],
            "responses": {
                "200": {
                    "description": "Deleted.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "id": {
                                        "type": "string"
                                    },
                                    "deleted": {
                                        "type": "boolean"
                                    }
                                }
                            }
                        }
                    }
                },
                "404": err(&[FileNotFound], json!({"description": "`file_not_found`: you have no such file."})),
                "500": {
                    "$ref": "#/components/responses/KeyedInternalError"
                }
            }
        }),
    )
}
