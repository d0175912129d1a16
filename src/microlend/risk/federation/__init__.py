"""Joint modelling with a data partner (联合建模, vertical federated learning): the bank holds the applicants'
outcomes and its own features, a partner (a payment platform, a tax-data service, a telecom) holds other
features of the same people, and the two train and use one logistic regression without either handing its
data to the other. Two processes talk over HTTP: `microlend federation partner serve` and the bank's
`microlend federation train` / `score`.

Security model: semi-honest (both sides follow the protocol but may study everything they receive), as in
FATE's and SecretFlow's hetero-LR. Against a partner that deviates from the protocol (e.g. reports bins of
one person), the bank's checks below limit but do not remove what it could learn.

Authentication (`keys`). Both sides hold the same partnership key (32 random bytes, `federation keygen`,
file mode 0600). Every request and every answer carries an HMAC-SHA256, under a key derived from it, over
the path (or the request's nonce, for an answer), a timestamp, a fresh nonce and the body. A wrong key, a
message older than 5 minutes or a nonce seen before is refused (HTTP 401; the bank's commands exit with
code 2). Each side keeps a transcript of every message (direction, type, size, SHA-256, time) and the
partner a request log; `--keep-messages` also keeps the bodies for an audit.

1. Private set intersection (`psi`). IDs are HMAC-SHA256 hashes of normalised ID numbers under a key-derived
   salt (an outsider cannot test guesses). ECDH PSI (openmined-psi, reveal-intersection mode, exact RAW
   matching) runs twice: the bank as client learns which of *its* IDs the partner holds; the partner as
   client learns which of *its* IDs the bank holds. Each learns the intersection and the other's set size,
   nothing about the IDs outside it. Both order the shared IDs by hash (so positions agree without sending
   IDs) and compare keyed digests of the intersection before going on.

2. Binning and WoE (`binning`). Each side bins its own features without the outcome (quantile edges,
   frequent categories, a missing bin; every bin at least 5% of the training rows). The bank computes its
   WoE from its labels. For the partner's features the bank sends its training labels encrypted under its
   own Paillier key [[y]]; the partner adds them up per bin (ciphertexts only, re-randomised) and returns
   the encrypted event count per bin with the row count per bin; the bank decrypts the counts, checks every
   bin meets the agreed minimum size, computes the WoE and sends it back. So the bank learns, per anonymous
   partner bin (its number, not its edges), its size and bad count; the partner learns the WoE of its own
   bins, i.e. the smoothed bad rate of groups of at least 5% of the shared customers, never a label.

3. Training (`training`, `partner`). logit(pd) = b + w_bank . woe_bank + w_partner . woe_partner. The
   residual sigmoid(z) - y is linearised around each row's log-odds z_e at the end of the previous epoch
   (the base log-odds z0 in the first; p_e = sigmoid(z_e), slope p0(1-p0) with p0 the bad rate):
   D = (z_bank - z_e + (p_e - y)/slope) + z_partner, so the steps settle on the logistic optimum with the L2
   penalty l2 * slope (the central `LogisticRegression` of the same rows, WoE and penalty), not on a
   least-squares fit. The step is learning_rate / (1 + decay (epoch - 1)) on both sides (the bank names it in
   each update, never above the rate agreed at set-up). Per mini-batch:
     - bank -> partner: [[z_bank - z_e + (p_e - y)/slope]] under the bank's key (labels never in clear);
     - the partner adds its z_partner under encryption to get [[D]], forms each gradient [[sum D x_k]] per
       bin with its WoE, adds a uniformly random mask r_k mod n (re-randomised) and returns it, together with
       [[z_partner]] under its *own* Paillier key;
     - the bank decrypts the masked gradients (it sees sum D x_k + r_k: uniformly random, nothing) and
       returns them; it forms its own gradients from [[z_partner]] + its plaintext part, masks them under the
       partner's key, and the partner decrypts and returns the masked values;
     - each side removes its masks and steps its own weights along mean(D x) (the gradient preconditioned by
       1/slope); the partner never sends its weights, the bank never sends its own.
   Each side learns its own gradients (aggregates over a batch), as in FATE's hetero-LR. After each epoch
   the partner returns its partial log-odds z_partner for the validation and training rows, so the bank can
   measure AUC, stop early (patience 2) and keep the best epoch (the partner keeps its weights of that epoch),
   and report the train-test gap the model gates check: the bank thus sees the shared rows' partner partial
   scores once per epoch, as it would when scoring them.

4. Scoring. The bank sends keyed hashes of the IDs to score and the model id; the partner answers its
   partial log-odds for those IDs only (none for an ID it does not hold), the bank adds its own part: pd,
   score (PDO scale) and reasons, the partner's whole contribution named `partner_data`. The partner learns
   which of its people the bank is scoring; the bank learns one partial score per scored person.

5. Governance and the live decision. The bank records each partner (`partnerships`: endpoint, key fingerprint,
   the partner's features it covers, purpose, consent basis, contract, validity, active or suspended; risk
   analysts and admins, audited). `federation train --partnership` refuses to run under a suspended or expired
   partnership, another key or another server, and a run's whole exchange has a deadline (a hung partner ends it
   with an error and no model). Each such run is recorded (`runs`): its progress as it goes (PSI, set-up, epoch
   and batch, shared IDs; one short transaction per update, at most one a second within a phase) and how it ended,
   failed with the error or succeeded with the joint and bank-only validation AUC and KS, which the analyst's
   pages show per partnership. A trained joint model
   is registered (`risk.joint_models`) as kind `hetero-lr` under its partnership, with the partner's features
   only as a count and aliases and a report of AUC and KS of the joint, bank-only and partner-only scores, and
   goes through the gates and four eyes like any model (`joint_scoring` is its scoring side). As champion, a
   decision asks the partner for one applicant's partial score within 300 ms (`online`), an application only under
   the applicant's partner_scoring consent (without it the partner is not asked: the bank-only model decides with
   PARTNER_NO_CONSENT); the decision records the versions that scored and the call's outcome and latency. A
   suspended or expired
   partnership, a missing key, an unreachable, slow or refusing partner make it score with the bank-only model
   on the same WoE, its label ending in "bank-only" and PARTNER_UNAVAILABLE first among the reasons stored
   with the decision's inputs (so the decision replays).

Each side encrypts its own vectors (labels, residuals, partial scores) with random factors drawn modulo p**2 and
q**2 (`crypto.OwnKey`), shared out over worker processes: same ciphertexts as phe's, about a quarter of the CPU.

What never crosses the wire in clear: a label, a feature value, a person's bin, either side's weights or
bin edges, or an ID number. The bank's model directory keeps the partner's feature names, never values.
"""
