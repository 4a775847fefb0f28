package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ark-sched/ark/kernels"
)

// LoRA targets: which linear layers of every block get an adapter.
const (
	LoRAAttn = "attn" // the QKV and output projections
	LoRAMLP  = "mlp"  // the MLP's up and down projections
)

// LoRAConfig is a low-rank adapter's shape (Hu et al., 2021): every
// targeted linear layer y = x·Wᵀ + b becomes y = x·Wᵀ + b + (Alpha/Rank)·
// (x·Aᵀ)·Bᵀ, A Rank x in, B out x Rank, with W frozen.
type LoRAConfig struct {
	Rank    int      `json:"rank"`
	Alpha   float64  `json:"alpha"`
	Targets []string `json:"targets"`
}

// WithDefaults fills alpha (2·rank, as the example and common
// practice) and targets (attn and mlp).
func (c LoRAConfig) WithDefaults() LoRAConfig {
	if c.Alpha == 0 {
		c.Alpha = 2 * float64(c.Rank)
	}
	if len(c.Targets) == 0 {
		c.Targets = []string{LoRAAttn, LoRAMLP}
	}
	return c
}

// Validate checks c against the model it adapts.
func (c LoRAConfig) Validate(model Config) error {
	switch {
	case c.Rank < 1:
		return fmt.Errorf("%w: lora rank must be >= 1, got %d", ErrConfig, c.Rank)
	case c.Rank > model.Width:
		return fmt.Errorf("%w: lora rank %d exceeds the model width %d (a full-rank update)", ErrConfig, c.Rank, model.Width)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return fmt.Errorf("%w: lora alpha must be > 0, got %g", ErrConfig, c.Alpha)
	case len(c.Targets) == 0:
		return fmt.Errorf("%w: lora targets are empty (want %s and/or %s)", ErrConfig, LoRAAttn, LoRAMLP)
	}
	for i, t := range c.Targets {
		if t != LoRAAttn && t != LoRAMLP {
			return fmt.Errorf("%w: lora target %q (want %s or %s)", ErrConfig, t, LoRAAttn, LoRAMLP)
		}
		if slices.Index(c.Targets, t) != i {
			return fmt.Errorf("%w: lora target %q given twice", ErrConfig, t)
		}
	}
	return nil
}

// Scale is Alpha/Rank, the factor on the low-rank update.
func (c LoRAConfig) Scale() float32 { return float32(c.Alpha / float64(c.Rank)) }

func (c LoRAConfig) has(t string) bool { return slices.Contains(c.Targets, t) }

func (c LoRAConfig) String() string {
	return fmt.Sprintf("rank %d alpha %g targets %s", c.Rank, c.Alpha, strings.Join(c.Targets, ","))
}

// The targeted linear layers of a block, in layout order.
const (
	loraQKV = iota
	loraO
	loraFC
	loraProj
	loraSlots
)

// loraShape is the in and out width of each targeted layer, 0 when the
// layer is not targeted.
func (c LoRAConfig) loraShape(model Config) [loraSlots][2]int {
	C := model.Width
	var s [loraSlots][2]int
	if c.has(LoRAAttn) {
		s[loraQKV], s[loraO] = [2]int{C, 3 * C}, [2]int{C, C}
	}
	if c.has(LoRAMLP) {
		s[loraFC], s[loraProj] = [2]int{C, 4 * C}, [2]int{4 * C, C}
	}
	return s
}

// NumParams is the adapter's parameter count on model.
func (c LoRAConfig) NumParams(model Config) int {
	n := 0
	for _, io := range c.loraShape(model) {
		n += c.Rank * (io[0] + io[1])
	}
	return n * model.Layers
}

// loraLinear is one targeted layer's A (Rank x in) and B, stored
// transposed as bt (Rank x out): with both factors Rank rows tall, every
// LoRA matmul below has the rank as its M or K, never as the N of a
// thin output (a row-major GEMM's worst shape: measured 21% of a step,
// against 3% of its FLOPs, before this layout).
type loraLinear struct {
	a, bt   kernels.Buffer
	in, out int
}

// loraBlock is a block's adapted layers, nil where not targeted.
type loraBlock [loraSlots]*loraLinear

// Adapter is a LoRA adapter's parameters (and, for training, gradients and
// AdamW moments) on one device, for one model shape. Layout: per block,
// per targeted layer in the order qkv, o, fc, proj: A (Rank x in) then Bᵀ
// (Rank x out), row-major.
type Adapter struct {
	Cfg   LoRAConfig
	Model Config
	// Base is the checkpoint URI of the base it was trained on and
	// BaseSHA256 the SHA-256 of that base's parameters (Model.ParamsSHA256):
	// an adapter only means something on top of that exact base.
	Base, BaseSHA256 string

	d kernels.Device
	paramSet
	p, g  []loraBlock
	scale float32
}

// NewAdapter allocates a zeroed adapter for model on d.
func NewAdapter(d kernels.Device, model Config, c LoRAConfig) (*Adapter, error) {
	c = c.WithDefaults()
	if err := c.Validate(model); err != nil {
		return nil, err
	}
	a := &Adapter{Cfg: c, Model: model, d: d, scale: c.Scale()}
	var err error
	if a.paramSet, err = newParamSet(d, c.NumParams(model)); err != nil {
		return nil, fmt.Errorf("lora adapter: %w", err)
	}
	if a.p, err = bindLoRA(d, model, c, a.params); err != nil {
		a.free(d)
		return nil, err
	}
	if a.g, err = bindLoRA(d, model, c, a.grads); err != nil {
		a.free(d)
		return nil, err
	}
	return a, nil
}

func bindLoRA(d kernels.Memory, model Config, c LoRAConfig, buf kernels.Buffer) ([]loraBlock, error) {
	shape := c.loraShape(model)
	blocks := make([]loraBlock, model.Layers)
	off := 0
	for l := range blocks {
		for t, io := range shape {
			if io[0] == 0 {
				continue
			}
			ll := &loraLinear{in: io[0], out: io[1]}
			var err error
			if ll.a, err = d.Slice(buf, off, c.Rank*ll.in); err != nil {
				return nil, fmt.Errorf("bind lora block %d: %w", l, err)
			}
			off += c.Rank * ll.in
			if ll.bt, err = d.Slice(buf, off, ll.out*c.Rank); err != nil {
				return nil, fmt.Errorf("bind lora block %d: %w", l, err)
			}
			off += ll.out * c.Rank
			blocks[l][t] = ll
		}
	}
	return blocks, nil
}

// Init is LoRA's initialisation: A uniform in ±1/sqrt(in) (what PyTorch's
// kaiming_uniform(a=√5) gives), B zero, so the adapted model starts as the
// base exactly; moments zero.
func (a *Adapter) Init(seed uint64) error {
	d := a.d
	rng := rand.New(rand.NewPCG(seed, 0x6c6f7261))
	host := make([]float32, 0, a.n)
	for range a.Model.Layers {
		for _, io := range a.Cfg.loraShape(a.Model) {
			if io[0] == 0 {
				continue
			}
			bound := 1 / math.Sqrt(float64(io[0]))
			for range a.Cfg.Rank * io[0] {
				host = append(host, float32((2*rng.Float64()-1)*bound))
			}
			host = append(host, make([]float32, io[1]*a.Cfg.Rank)...)
		}
	}
	if err := kernels.WriteFloat32(d, a.params, host); err != nil {
		return fmt.Errorf("init lora adapter: %w", err)
	}
	return firstErr(d.Fill(a.m, 0), d.Fill(a.v, 0))
}

// NumParams is the adapter's parameter count.
func (a *Adapter) NumParams() int { return a.n }

// Free releases the adapter's device memory; it is idempotent.
func (a *Adapter) Free() {
	if a.params != nil {
		a.free(a.d)
	}
}

// SetAdapter attaches a (nil detaches): forward passes add its low-rank
// updates, and backward trains it alone, leaving the model's weights
// frozen (their gradients are not computed).
func (m *Model) SetAdapter(a *Adapter) error {
	if a != nil && a.d != m.d {
		return fmt.Errorf("%w: adapter on device %s, model on %s", ErrConfig, a.d.Name(), m.d.Name())
	}
	if a != nil && a.Model != m.Cfg {
		return fmt.Errorf("%w: adapter for model %+v, this model is %+v", ErrConfig, a.Model, m.Cfg)
	}
	m.lora = a
	return nil
}

// Adapter is the attached adapter, nil for none.
func (m *Model) Adapter() *Adapter { return m.lora }

// loraActs are the adapter's saved activations uᵀ = A·xᵀ (Rank x rows)
// per block and targeted layer, and a scratch duᵀ for backward.
type loraActs struct {
	rank int
	u    [][loraSlots]kernels.Buffer
	du   kernels.Buffer
}

// loraFor returns a's adapter activations for the attached adapter,
// allocating them the first time (or when the rank changed).
func (m *Model) loraFor(a *acts) (*loraActs, error) {
	r := m.lora.Cfg.Rank
	if a.lora != nil && a.lora.rank == r {
		return a.lora, nil
	}
	if a.lora != nil {
		for _, bu := range a.lora.u {
			for _, u := range bu {
				_ = m.d.Free(u)
			}
		}
		_ = m.d.Free(a.lora.du)
	}
	la := &loraActs{rank: r, u: make([][loraSlots]kernels.Buffer, m.Cfg.Layers)}
	var err error
	for l := range la.u {
		for t := range loraSlots {
			if la.u[l][t], err = m.d.Alloc(kernels.Float32, a.N*r); err != nil {
				return nil, fmt.Errorf("allocate lora activations: %w", err)
			}
		}
	}
	if la.du, err = m.d.Alloc(kernels.Float32, a.N*r); err != nil {
		return nil, fmt.Errorf("allocate lora activations: %w", err)
	}
	a.lora = la
	return la, nil
}

// loraForward adds scale·(x·Aᵀ)·Bᵀ into y (rows x out) for ll, keeping
// uᵀ = A·xᵀ (Rank x rows) for backward; a no-op for a layer without an
// adapter.
func (m *Model) loraForward(ll *loraLinear, y, x, ut kernels.Buffer, rows int) error {
	if ll == nil {
		return nil
	}
	r := m.lora.Cfg.Rank
	if err := m.d.MatMul(ut, ll.a, x, nil, kernels.MatMulArgs{M: r, N: rows, K: ll.in, TransB: true, Alpha: 1}); err != nil {
		return fmt.Errorf("lora down-projection: %w", err)
	}
	if err := m.d.MatMul(y, ut, ll.bt, nil, kernels.MatMulArgs{M: rows, N: ll.out, K: r, TransA: true, Alpha: m.lora.scale, Beta: 1}); err != nil {
		return fmt.Errorf("lora up-projection: %w", err)
	}
	return nil
}

// loraBackward, from dy (rows x out), adds the gradients of Bᵀ and A into
// gl and the gradient of the layer's input into dx:
//
//	dBᵀ += s·uᵀ·dy   duᵀ = s·Bᵀ·dyᵀ   dA += duᵀ·x   dx += (duᵀ)ᵀ·A
func (m *Model) loraBackward(ll, gl *loraLinear, dx, dy, x, ut, dut kernels.Buffer, rows int) error {
	if ll == nil {
		return nil
	}
	r, s := m.lora.Cfg.Rank, m.lora.scale
	err := firstErr(
		m.d.MatMul(gl.bt, ut, dy, nil, kernels.MatMulArgs{M: r, N: ll.out, K: rows, Alpha: s, Beta: 1}),
		m.d.MatMul(dut, ll.bt, dy, nil, kernels.MatMulArgs{M: r, N: rows, K: ll.out, TransB: true, Alpha: s}),
		m.d.MatMul(gl.a, dut, x, nil, kernels.MatMulArgs{M: r, N: ll.in, K: rows, Alpha: 1, Beta: 1}),
		m.d.MatMul(dx, dut, ll.a, nil, kernels.MatMulArgs{M: rows, N: ll.in, K: r, TransA: true, Alpha: 1, Beta: 1}),
	)
	if err != nil {
		return fmt.Errorf("lora backward: %w", err)
	}
	return nil
}

// loraLayers returns block l's adapter weights, gradients and saved
// activations; all nil without an adapter (every lora call is then a
// no-op).
func (m *Model) loraLayers(a *acts, l int) (p, g loraBlock, u [loraSlots]kernels.Buffer, du kernels.Buffer, err error) {
	if m.lora == nil {
		return
	}
	la, err := m.loraFor(a)
	if err != nil {
		return
	}
	return m.lora.p[l], m.lora.g[l], la.u[l], la.du, nil
}

// weightGrad accumulates a frozen-or-not weight's gradient: skipped when
// an adapter is attached (the base is frozen: that skip is most of LoRA's
// saving in backward).
func (m *Model) weightGrad(c, a, b kernels.Buffer, M, N, K int) error {
	if m.lora != nil {
		return nil
	}
	return m.mm(c, a, b, nil, M, N, K, true, false, 1)
}

// biasGrad is ColSum for a bias gradient, skipped like weightGrad.
func (m *Model) biasGrad(out, in kernels.Buffer, rows, cols int) error {
	if m.lora != nil {
		return nil
	}
	return m.d.ColSum(out, in, rows, cols)
}
