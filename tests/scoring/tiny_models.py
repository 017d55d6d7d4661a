"""Tiny models built from a config, with a tokenizer trained on the spot: no download, fast."""

WORDS = (
    "you are a careful impartial judge of ai assistant responses compare two to the same user "
    "prompt and decide which one is better more helpful correct faithful instructions harmless "
    "do not let order in shown their length or style influence response end answer with digit "
    "clearly slightly tie how they system assistant what is the capital of france paris rome "
    "it berlin london good bad very long text here A B 1 2 3 4 5 = [ ] : ? . , ... "
    "question GOOD answer meh"
)


def tiny_tokenizer(extra_words: str = ""):
    """A word-level tokenizer over WORDS (and `extra_words`, for tests with their own text)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        [WORDS, WORDS.upper(), *([extra_words] if extra_words else [])],
        trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "<s>", "</s>"]),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="<s>",
        eos_token="</s>",
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
        "{% if add_generation_prompt %}<s> assistant :{% endif %}"
    )
    return tokenizer


def tiny_llama(tokenizer, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
        )
    )


def tiny_reward_model(tokenizer, seed: int = 0):
    """A tiny llama with a one-score head, as AutoModelForSequenceClassification makes them."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    return LlamaForSequenceClassification(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            num_labels=1,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
