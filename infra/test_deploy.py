"""Unit tests of infra/deploy.py's decisions that need no AWS account (run by `make lint`)."""

import os
import sys
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deploy  # noqa: E402


class FakeS3:
    def __init__(self):
        self.uploads = []

    def upload_file(self, path, bucket, key):
        self.uploads.append((Path(path).name, bucket, key))


class FakeSession:
    def __init__(self):
        self.s3 = FakeS3()

    def client(self, name):
        assert name == "s3"
        return self.s3


class PolicyUpload(unittest.TestCase):
    def test_the_stack_that_created_the_knowledge_base_gets_the_policy(self):
        outputs = {"PolicyDocuments": "s3://chat-moderation-bucket-1/policies/"}
        self.assertEqual(deploy.policy_target(outputs, ""), ("chat-moderation-bucket-1", "policies/"))
        # The stack's own prefix wins over POLICY_BUCKET: its data source reads only that.
        self.assertEqual(deploy.policy_target(outputs, "other"), ("chat-moderation-bucket-1", "policies/"))

    def test_an_existing_knowledge_base_uploads_only_when_asked(self):
        self.assertIsNone(deploy.policy_target({"BucketName": "b"}, ""))
        self.assertIsNone(deploy.policy_target(None, ""))
        self.assertEqual(deploy.policy_target({"BucketName": "b"}, "kb-docs"), ("kb-docs", "policies/"))

    def test_every_policy_file_is_uploaded_under_the_prefix(self):
        session = FakeSession()
        outputs = {"PolicyDocuments": "s3://b/policies/"}
        with mock.patch.dict(os.environ, {"POLICY_BUCKET": ""}):
            self.assertEqual(deploy.upload_policies(session, outputs), 0)
        shipped = sorted(p.name for p in (deploy.INFRA / "policies").glob("*.md"))
        self.assertTrue(shipped)
        self.assertEqual(session.s3.uploads, [(n, "b", "policies/" + n) for n in shipped])

    def test_a_failed_upload_fails_the_command(self):
        session = FakeSession()

        def refuse(*_):
            raise RuntimeError("AccessDenied")

        session.s3.upload_file = refuse
        with mock.patch.dict(os.environ, {"POLICY_BUCKET": ""}):
            self.assertEqual(deploy.upload_policies(session, {"PolicyDocuments": "s3://b/policies/"}), 1)


if __name__ == "__main__":
    unittest.main()
