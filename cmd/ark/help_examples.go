package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// commandExamples are the Examples sections of the commands whose
// definitions do not carry one, by command path without "ark ". Every
// command a user runs has examples (TestEveryCommandHasExamples walks the
// tree); a command may instead set its own cobra Example, which wins.
var commandExamples = map[string]string{
	"job submit": `  ark job submit examples/hello-gang.yaml
  ark job submit examples/finetune.yaml --wait
  ark job submit big.yaml --wait --wait-pending --timeout 1h
  cat job.yaml | ark job submit -`,
	"job validate": `  ark job validate examples/finetune.yaml          # against the cluster at --addr when one answers
  ark job validate big.yaml --cluster               # the cluster's answer is required
  ark job validate job.yaml --offline -o json`,
	"job status": `  ark job status shakespeare-ft-1a2b3c
  ark job status shakespeare-ft        # a name or a unique ID prefix
  ark job status shakespeare-ft -o json`,
	"job list": `  ark job list
  ark job list --status pending
  ark job list -o json`,
	"job cancel": `  ark job cancel hello-gang-1a2b3c
  ark job cancel job-a job-b job-c     # a job that already ended is left as it is`,
	"job logs": `  ark job logs shakespeare-ft-1a2b3c
  ark job logs hello-gang-1a2b3c --rank 1 --stderr
  ark job logs shakespeare-ft -f`,
	"node list": `  ark node list
  ark node list -o json`,
	"node status": `  ark node status dev-1
  ark node status dev-1 -o json`,
	"node drain": `  ark node drain dev-1 --deadline 30m --wait
  ark node drain dev-1 --deadline 0s   # move its jobs now
  ark node drain dev-1 --disable       # cancel the drain`,
	"node eligibility": `  ark node eligibility dev-1 --disable
  ark node eligibility dev-1 --enable`,
	"queue list": `  ark queue list
  ark queue list -o json`,
	"dev": `  ark dev
  ark dev --agents 4 --fake-gpus 8xH200:141Gi
  ark dev --http 127.0.0.1:5680 --data-dir /tmp/ark-dev`,
	"server": `  ark server --name s1 --data-dir /var/lib/ark --http 10.0.0.1:4680 --raft 10.0.0.1:4681
  ark server --name s1 --data-dir /var/lib/ark --bootstrap-expect 3 --join 10.0.0.2:4680,10.0.0.3:4680`,
	"server join": `  ark server join 10.0.0.1:4680 --addr 10.0.0.4:4680`,
	"agent": `  ark agent --name gpu-1 --servers 10.0.0.1:4680 --data-dir /var/lib/ark-agent
  ark agent --name fake-1 --servers 127.0.0.1:4680 --fake-gpus 8xH200:141Gi --data-dir /tmp/a1`,
	"health": `  ark health
  ark health --addr 10.0.0.1:4680 --timeout 2s
  ark health --agent 10.0.0.7:4690`,
	"infer": `  ark infer serve-1a2b3c --prompt "ROMEO:" --tokens 64
  ark infer serve-1a2b3c --prompt "ROMEO:" --temperature 0
  ark infer serve-1a2b3c --chat --model bard --stream --prompt "Who art thou?"
  ark infer serve-1a2b3c --model bard --prompt "ROMEO:" -o json   # OpenAI's completion object`,
	"example rendezvous": `  # as a job's command (see examples/hello-gang.yaml):
  ark example rendezvous --timeout 2m`,
	"example http-service": `  # as a service's command (see examples/service.yaml):
  ark example http-service --message v2 --delay 50ms
  ark example http-service --listen 127.0.0.1:8000 --startup 5s   # by hand; health fails for 5s`,
	"job update": `  ark job update echo-1a2b3c examples/service.yaml --wait
  ark job update echo-1a2b3c v2.yaml --check-version 3   # refused if another update came first`,
	"job promote": `  ark job promote echo-1a2b3c          # the canaries are healthy: roll out the rest
  ark job promote echo-1a2b3c --wait`,
	"job adapter add": `  ark job adapter add serve-1a2b3c legal model://legal@2
  ark job adapter add serve-1a2b3c legal file:///data/nlp/ckpt/legal-ft --pinned
  ark job adapter add serve-1a2b3c legal s3://ckpt/nlp/legal-ft --timeout 5m   # a slow store
  ark job adapter add serve-1a2b3c legal model://legal --no-wait                # return at the commit`,
	"job adapter rm": `  ark job adapter rm serve-1a2b3c legal`,
	"job adapter list": `  ark job adapter list serve-1a2b3c           # each replica's adapters: tier, or failed and why
  ark job adapter list serve-1a2b3c -o json`,
	"job history": `  ark job history echo-1a2b3c
  ark job history echo-1a2b3c -o json`,
	"job revert": `  ark job revert echo-1a2b3c 2 --wait  # back to version 2's spec, as a new version`,
	"bench allreduce": `  ark bench allreduce
  ark bench allreduce --ranks 2,4,8 --transport shm --max-bytes 16M --json`,
	"bench cluster": `  ark bench cluster --nodes 1000 --duration 2m
  ark bench cluster --nodes 10000 --duration 5m --profile-dir prof --json`,
	"bench kernels": `  ark bench kernels
  ark bench kernels --sizes 512,1024 --threads 1,2 --json`,
	"bench placement": `  ark bench placement
  ark bench placement --all --json
  ark bench placement --over-time`,
	"bench raft": `  ark bench raft
  ark bench raft --clients 1,64 --duration 10s --failovers 3 --json`,
	"bench serve": `  ark bench serve
  ark bench serve --model gpt-small --adapters 0,4 --concurrency 1,8 --json`,
	"bench train": `  ark bench train
  ark bench train --model gpt-small --ranks 1,2,4 --json`,
	"task train": `  # inside a job (the builtin driver runs it for finetune jobs):
  ark task train --model gpt-tiny --data data.txt --steps 150 --every 50 --checkpoint "$ARK_CHECKPOINT_URI"
  ark task train --model gpt-tiny --data data.txt --base examples/base/gpt-tiny --lora-rank 8`,
	"task eval": `  ark task eval --ckpt examples/base/gpt-tiny --data examples/data/shakespeare.txt
  ark task eval --ckpt file:///var/lib/ark/ckpt/default/ft-1/000000000150,examples/base/gpt-tiny --data data.txt`,
	"task generate": `  ark task generate --ckpt examples/base/gpt-tiny --prompt "ROMEO:" --tokens 100`,
	"task serve": `  ark task serve --ckpt examples/base/gpt-tiny --listen 127.0.0.1:8000
  ark task serve --base examples/base/gpt-tiny --adapter bard=file:///var/lib/ark/ckpt/default/ft-1`,
	"tls ca create": `  ark tls ca create --out /etc/ark/tls`,
	"tls cert create": `  ark tls cert create --server --name s1 --ca-dir /etc/ark/tls --out /etc/ark/tls
  ark tls cert create --agent --name gpu-1 --ca-dir /etc/ark/tls
  ark tls cert create --cli --name alice --ca-dir /etc/ark/tls`,
	"acl bootstrap":     `  ark acl bootstrap                    # prints the first management token, once`,
	"acl policy apply":  `  ark acl policy apply research research-policy.json`,
	"acl policy delete": `  ark acl policy delete research`,
	"acl policy list": `  ark acl policy list
  ark acl policy list -o json`,
	"acl policy show": `  ark acl policy show research`,
	"acl token create": `  ark acl token create --policy research --name alice --ttl 720h
  ark acl token create --management --name ops`,
	"acl token delete": `  ark acl token delete 4f1c2a9e-...`,
	"acl token list": `  ark acl token list
  ark acl token list -o json`,
	"operator audit verify":         `  ark operator audit verify /var/lib/ark/audit.log`,
	"operator namespace-key delete": `  ark operator namespace-key delete old-team`,
	"operator raft list-peers": `  ark operator raft list-peers
  ark operator raft list-peers -o json`,
	"operator raft remove-peer": `  ark operator raft remove-peer s3`,
	"operator snapshot save":    `  ark operator snapshot save backup.snap`,
	"operator snapshot restore": `  ark operator snapshot restore backup.snap`,
}

// addExamples gives each command under root without examples its entry
// in commandExamples.
func addExamples(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if strings.TrimSpace(c.Example) == "" {
			c.Example = commandExamples[strings.TrimPrefix(c.CommandPath(), root.Name()+" ")]
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
