"""The media library (issue 16): uploads checked, stored on the filesystem or in an
S3-compatible bucket, listed, served and deleted; see docs/media.md.

- `checks`: safe names, allowed extensions, content that agrees with its extension.
- `images`: thumbnails within a pixel budget.
- `config`: the `upload.*` settings.
- `storage`: the filesystem and S3 backends.
- `library`: the records and the operations on them, `get_media_content` for attachments.
"""

from __future__ import annotations

from stmails.services.media.library import get_media_content

__all__ = ["get_media_content"]
