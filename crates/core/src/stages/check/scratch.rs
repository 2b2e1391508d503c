//! The one object a real-time image check's policy step reads: the prepared picture, held in
//! memory. The check writes nothing and reads nothing else, so it never touches the bucket.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::ObjectRef;
use crate::ports::{ListObjects, OpenedObject, ReadObjects, SwapObjects, Tagged, WriteObjects};

pub(crate) struct PictureOnly {
    pub bucket: String,
    pub key: String,
    pub bytes: Vec<u8>,
}

fn refused(what: &str) -> Error {
    Error::Input(format!("the real-time check keeps nothing: {what} refused"))
}

#[async_trait]
impl ReadObjects for PictureOnly {
    async fn open(&self, obj: &ObjectRef) -> Result<OpenedObject> {
        Err(refused(&format!("opening {}", obj.key)))
    }

    async fn get_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok((bucket == self.bucket && key == self.key).then(|| self.bytes.clone()))
    }
}

#[async_trait]
impl WriteObjects for PictureOnly {
    async fn put(&self, _: &str, key: &str, _: Vec<u8>, _: &str) -> Result<()> {
        Err(refused(&format!("writing {key}")))
    }

    async fn put_file(&self, _: &str, key: &str, _: &std::path::Path, _: &str) -> Result<()> {
        Err(refused(&format!("writing {key}")))
    }
}

#[async_trait]
impl ListObjects for PictureOnly {
    async fn list(&self, _: &str, _: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl SwapObjects for PictureOnly {
    async fn get_tagged(&self, _: &str, _: &str) -> Result<Option<Tagged>> {
        Ok(None)
    }

    async fn put_if(
        &self,
        _: &str,
        key: &str,
        _: Vec<u8>,
        _: &str,
        _: Option<&str>,
    ) -> Result<Option<String>> {
        Err(refused(&format!("writing {key}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_picture_is_there_and_nothing_is_written() {
        let store = PictureOnly {
            bucket: "check-api".into(),
            key: "pictures/check.png".into(),
            bytes: vec![1, 2, 3],
        };
        let got = store.get_bytes("check-api", "pictures/check.png").await;
        assert_eq!(got.ok().flatten(), Some(vec![1, 2, 3]));
        let other = store.get_bytes("check-api", "pictures/other.png").await;
        assert_eq!(other.ok().flatten(), None);
        assert!(store.put("check-api", "x", vec![], "a/b").await.is_err());
    }
}
