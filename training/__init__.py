"""Training the studio's own router: Router-R1's reward over collected sessions, rejection sampling, LoRA, GGUF.

The pipeline (`app.py collect`, then `app.py train`):
- collect.py      a teacher policy over public *train* questions at several α, as eval runs in the store;
- trajectories.py stored sessions → trajectories scored with Router-R1's reward at any α, the best kept per
                  (question, α), each drop with its reason, and the plain-protocol text the student learns;
- sft.py          LoRA (peft) on a base loaded from the shipped GGUF through transformers, with transformers'
                  Trainer and a loss only on the policy's own tokens (replies inside <information> masked);
- router_core/engines/adapters.py: the LoRA written as a GGUF adapter llama.cpp loads on the quantized base (and
                  checked there, before any engine loads it);
- card.py         the training card beside the adapter: data, counts, α values, loss, reward, time, hashes.

Its own package because it is neither routing (router_core imports no torch) nor evaluation.
"""
