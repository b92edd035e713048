"""Datasets (streamed multipart upload), pipelines and the activity feed."""

from __future__ import annotations

import re

import flask
from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.errors import ApiError
from api.params import MAX_ID, id_param, int_param, json_body, runtime

UPLOAD_ENV = "mlops.upload"
# What a client may call its upload (it comes back in every upload event): the page sends a hex uuid.
UPLOAD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class MlopsRequest(flask.Request):
    """Lets an upload endpoint receive its file part straight into its own temp file, with progress."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        upload = self.environ.get(UPLOAD_ENV)
        if upload is not None:
            return upload.open_file(filename)
        return super()._get_file_stream(total_content_length, content_type, filename, content_length)

    def make_form_data_parser(self):
        parser = super().make_form_data_parser()
        if UPLOAD_ENV in self.environ:
            # Werkzeug's parser is silent by default: a body that ends before its closing boundary
            # parses as an empty form, after the file part was already streamed to disk. An upload
            # wants to know, so that a cut file is refused rather than stored.
            parser.silent = False
        return parser



def register(bp: Blueprint) -> None:
    @bp.get("/datasets")
    def list_datasets():
        return jsonify({"items": runtime().datasets.list()})

    @bp.post("/datasets")
    def upload_dataset():
        datasets = runtime().datasets
        upload_id = request.args.get("upload_id") or request.headers.get("X-Upload-Id")
        if upload_id is not None and not UPLOAD_ID.fullmatch(upload_id):
            raise ApiError(
                "'upload_id' must be 1 to 64 letters, digits or . _ : -", code="invalid_parameter",
                details={"parameter": "upload_id"},
            )
        upload = datasets.start_upload(upload_id, request.content_length)
        if request.mimetype != "multipart/form-data":
            error = ApiError(
                "send the CSV as multipart/form-data with a field named 'file'", code="unsupported_media_type", status=415
            )
            datasets.fail_upload(upload, error)
            raise error
        request.environ[UPLOAD_ENV] = upload
        try:
            files, form = request.files, request.form  # parsing streams the file part to disk
        except RequestEntityTooLarge:
            limit = datasets.max_upload_bytes // 2**20
            error = ApiError(f"the file is larger than the {limit} MB limit (MLOPS_MAX_UPLOAD_MB)", code="too_large", status=413)
            datasets.fail_upload(upload, error)
            raise error from None
        except HTTPException as exc:  # the client went away mid-upload, or a broken multipart body
            error = ApiError(f"the upload did not arrive whole: {exc.description}", code="upload_aborted", status=400)
            datasets.fail_upload(upload, error)
            raise error from None
        except ValueError:  # werkzeug's multipart parser: no closing boundary, a part without headers
            error = ApiError(
                "the upload did not arrive whole: the multipart body is malformed or ends before its closing boundary",
                code="upload_aborted", status=400,
            )
            datasets.fail_upload(upload, error)
            raise error from None
        except OSError as exc:  # disk full or unwritable data dir while receiving
            error = ApiError(f"the upload could not be written to disk: {exc.strerror or exc}", code="storage_error", status=507)
            datasets.fail_upload(upload, error)
            raise error from None
        except BaseException:
            upload.discard()  # whatever went wrong, the half-written file does not stay
            raise
        if upload.path is not None and not files:  # streamed to disk, but the part never ended
            error = ApiError("the upload did not arrive whole: the file part never ended", code="upload_aborted", status=400)
            datasets.fail_upload(upload, error)
            raise error
        unknown = sorted((set(form) - {"name"}) | (set(files) - {"file"}))
        if unknown or upload.extra_parts:
            error = ApiError(
                f"unknown or repeated field(s): {', '.join(unknown) or 'file'}; send one 'file' and an optional 'name'",
                code="unknown_fields",
                details={"fields": unknown},
            )
            datasets.fail_upload(upload, error)
            raise error
        for storage in files.values():
            storage.close()
        item, _created = datasets.finish_upload(upload, form.get("name"))
        return jsonify(item), 201

    @bp.get(f"/datasets/<int(max={MAX_ID}):dataset_id>")
    def get_dataset(dataset_id: int):
        return jsonify(runtime().datasets.get(dataset_id))

    @bp.patch(f"/datasets/<int(max={MAX_ID}):dataset_id>")
    def rename_dataset(dataset_id: int):
        return jsonify(runtime().datasets.rename(dataset_id, json_body()))

    @bp.delete(f"/datasets/<int(max={MAX_ID}):dataset_id>")
    def delete_dataset(dataset_id: int):
        runtime().datasets.delete(dataset_id)
        return "", 204

    @bp.get("/pipelines")
    def list_pipelines():
        return jsonify({"items": runtime().pipelines.list()})

    @bp.post("/pipelines")
    def create_pipeline():
        return jsonify(runtime().pipelines.create(json_body())), 201

    @bp.get(f"/pipelines/<int(max={MAX_ID}):pipeline_id>")
    def get_pipeline(pipeline_id: int):
        return jsonify(runtime().pipelines.get(pipeline_id))

    @bp.patch(f"/pipelines/<int(max={MAX_ID}):pipeline_id>")
    def update_pipeline(pipeline_id: int):
        return jsonify(runtime().pipelines.update(pipeline_id, json_body()))

    @bp.delete(f"/pipelines/<int(max={MAX_ID}):pipeline_id>")
    def delete_pipeline(pipeline_id: int):
        runtime().pipelines.delete(pipeline_id)
        return "", 204

    @bp.get("/activity")
    def list_activity():
        limit = int_param("limit", 50, minimum=1, maximum=500)
        before = id_param("before")
        return jsonify({"items": runtime().activity.list(limit=limit, before=before)})
