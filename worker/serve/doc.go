// Package serve is Ark's builtin inference server: it loads a checkpoint of
// the builtin GPT (worker/train) and answers generation requests over
// HTTP. An inference job's replicas each run one (ark task serve), on the
// port the scheduler reserved for the replica on its node.
package serve
