package awscheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// GoformationModule is the module whose schema/cloudformation.schema.json
// (every CloudFormation resource type and its properties, generated from
// AWS's CloudFormation resource specification) checks the template. Its
// intrinsics package reads the template (short-form tags, Fn::Sub, Ref).
const GoformationModule = "github.com/awslabs/goformation/v7"

// CFNSchema compiles goformation's CloudFormation schema once per caller.
type CFNSchema struct {
	c    *jsonschema.Compiler
	url  string
	root *jsonschema.Schema
	defs map[string]bool // resource types the schema knows
}

// LoadCFNSchema reads schema/cloudformation.schema.json of the goformation
// module this module requires.
func LoadCFNSchema() (*CFNSchema, error) {
	dir, err := RequiredModuleDir(GoformationModule)
	if err != nil {
		return nil, err
	}
	s := &CFNSchema{url: "file:///cloudformation.schema.json", defs: map[string]bool{}}
	doc, err := addSchemaFile(&s.c, s.url, filepath.Join(dir, "schema", "cloudformation.schema.json"))
	if err != nil {
		return nil, err
	}
	if m, ok := doc.(map[string]any); ok {
		defs, _ := m["definitions"].(map[string]any)
		for k := range defs {
			s.defs[k] = true
		}
	}
	if s.root, err = s.c.Compile(s.url); err != nil {
		return nil, err
	}
	return s, nil
}

// Template is a CloudFormation template after the AWS::LanguageExtensions
// transform's Fn::ForEach loops are expanded and the intrinsic functions
// resolved: Ref to a parameter gives its default, Ref and Fn::GetAtt to a
// resource a "ref:<id>" / "getatt:<id>.<attr>" placeholder.
type Template struct {
	Parameters map[string]map[string]any
	Resources  map[string]Resource
	Outputs    map[string]Output
}

// Resource is one resource of a Template.
type Resource struct {
	Type       string
	Properties map[string]any
}

// Output is one entry of a template's Outputs.
type Output struct {
	Description string
	Value       any
	Export      any
	Condition   string
}

// CheckTemplate reads a YAML or JSON template, expands it, resolves it and
// checks every part against the schema: the top level, each Parameter,
// each resource against its own type's definition (so an unknown type, an
// unknown property or a misspelt one is an error naming it), each Output,
// and every Ref, Fn::GetAtt and Fn::Sub variable against what the template
// declares.
func (s *CFNSchema) CheckTemplate(src []byte) (*Template, error) {
	// Long-form JSON, intrinsics not yet processed.
	doc, err := asMap(intrinsics.ProcessYAML(src, &intrinsics.ProcessorOptions{NoProcess: true}))
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, section := range []string{"Resources", "Outputs", "Conditions"} {
		m, ok := doc[section].(map[string]any)
		if !ok {
			continue
		}
		expanded, err := expandForEach(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", section, err))
		}
		doc[section] = expanded
	}
	params, _ := doc["Parameters"].(map[string]any)
	resources, _ := doc["Resources"].(map[string]any)
	ref := func(name string) (any, error) {
		switch name {
		case "AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::URLSuffix", "AWS::StackName", "AWS::StackId", "AWS::NoValue":
			return intrinsics.Ref("Ref", name, doc), nil
		}
		if p, ok := params[name].(map[string]any); ok {
			def := p["Default"]
			if p["Type"] == "Number" {
				if s, ok := def.(string); ok {
					return strconv.ParseFloat(s, 64)
				}
			}
			return def, nil
		}
		if _, ok := resources[name]; ok {
			return "ref:" + name, nil
		}
		return nil, fmt.Errorf("!Ref %s: no such parameter or resource", name)
	}
	handlers := map[string]intrinsics.IntrinsicHandler{
		"Ref": func(_ string, in, _ any) any {
			name, _ := in.(string)
			v, err := ref(name)
			if err != nil {
				errs = append(errs, err)
			}
			return v
		},
		"Fn::GetAtt": func(_ string, in, _ any) any {
			parts, _ := in.([]any)
			if str, ok := in.(string); ok { // the short form !GetAtt id.attr
				id, attr, _ := strings.Cut(str, ".")
				parts = []any{id, attr}
			}
			if len(parts) != 2 {
				errs = append(errs, fmt.Errorf("Fn::GetAtt %v: want [resource, attribute]", in))
				return nil
			}
			id, attr := fmt.Sprint(parts[0]), fmt.Sprint(parts[1])
			if _, ok := resources[id]; !ok {
				errs = append(errs, fmt.Errorf("Fn::GetAtt %s.%s: no resource %s", id, attr, id))
			}
			return "getatt:" + id + "." + attr
		},
		"Fn::Sub": func(name string, in, tmpl any) any {
			if str, ok := in.(string); ok {
				for _, m := range subVar.FindAllStringSubmatch(str, -1) {
					if id, _, isAtt := strings.Cut(m[1], "."); isAtt {
						if _, ok := resources[id]; !ok {
							errs = append(errs, fmt.Errorf("Fn::Sub %q: no resource %s", str, id))
						}
					} else if _, err := ref(m[1]); err != nil {
						errs = append(errs, fmt.Errorf("Fn::Sub %q: %w", str, err))
					}
				}
			}
			return intrinsics.FnSub(name, in, tmpl)
		},
	}
	expanded, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	out, err := asMap(intrinsics.ProcessJSON(expanded, &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: handlers}))
	if err != nil {
		return nil, err
	}

	t := &Template{Parameters: map[string]map[string]any{}, Resources: map[string]Resource{}, Outputs: map[string]Output{}}
	// The top level and the Parameters, with Resources checked one by one below.
	top := maps.Clone(out)
	top["Resources"] = map[string]any{}
	if err := s.root.Validate(top); err != nil {
		errs = append(errs, fmt.Errorf("template: %w", err))
	}
	for name, p := range out["Parameters"].(map[string]any) {
		t.Parameters[name], _ = p.(map[string]any)
	}
	res, _ := out["Resources"].(map[string]any)
	if len(res) == 0 {
		errs = append(errs, errors.New("template: no Resources"))
	}
	for _, id := range slices.Sorted(maps.Keys(res)) {
		m, _ := res[id].(map[string]any)
		typ, _ := m["Type"].(string)
		if !s.defs[typ] {
			errs = append(errs, fmt.Errorf("resource %s: type %q is not a CloudFormation resource type", id, typ))
			continue
		}
		if !logicalID.MatchString(id) {
			errs = append(errs, fmt.Errorf("resource %s: a logical ID is alphanumeric", id))
		}
		sch, err := s.c.Compile(s.url + "#/definitions/" + typ)
		if err != nil {
			return nil, err
		}
		if err := sch.Validate(m); err != nil {
			errs = append(errs, fmt.Errorf("resource %s (%s): %w", id, typ, err))
		}
		props, _ := m["Properties"].(map[string]any)
		t.Resources[id] = Resource{Type: typ, Properties: props}
	}
	outputs, _ := out["Outputs"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		b, _ := json.Marshal(outputs[name])
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		var o Output
		if err := dec.Decode(&o); err != nil {
			errs = append(errs, fmt.Errorf("output %s: %w", name, err))
		} else if o.Value == nil {
			errs = append(errs, fmt.Errorf("output %s: no Value", name))
		}
		t.Outputs[name] = o
	}
	return t, errors.Join(errs...)
}

var (
	subVar    = regexp.MustCompile(`\$\{([^}!]+)\}`)
	logicalID = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	nonAlnum  = regexp.MustCompile(`[^A-Za-z0-9]`)
)

// expandForEach expands the Fn::ForEach::<loop> keys of a template section
// as the AWS::LanguageExtensions transform does: for each value of the
// collection, a copy of the fragment with ${Identifier} replaced by the
// value and &{Identifier} by the value without its non-alphanumeric
// characters, in keys and strings alike. Nested loops expand too.
func expandForEach(section map[string]any) (map[string]any, error) {
	out := map[string]any{}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(section)) {
		v := section[k]
		if !strings.HasPrefix(k, "Fn::ForEach::") {
			if _, dup := out[k]; dup {
				errs = append(errs, fmt.Errorf("%s declared twice", k))
			}
			out[k] = v
			continue
		}
		loop, _ := v.([]any)
		if len(loop) != 3 {
			errs = append(errs, fmt.Errorf("%s: want [identifier, collection, fragment]", k))
			continue
		}
		ident, _ := loop[0].(string)
		coll, _ := loop[1].([]any)
		frag, _ := loop[2].(map[string]any)
		if ident == "" || len(coll) == 0 || frag == nil {
			errs = append(errs, fmt.Errorf("%s: want [identifier, collection, fragment]", k))
			continue
		}
		for _, item := range coll {
			val := fmt.Sprint(item)
			r := strings.NewReplacer("${"+ident+"}", val, "&{"+ident+"}", nonAlnum.ReplaceAllString(val, ""))
			copied, _ := substitute(frag, r).(map[string]any)
			inner, err := expandForEach(copied)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
			for ik, iv := range inner {
				if strings.Contains(ik, "{"+ident+"}") {
					errs = append(errs, fmt.Errorf("%s: key %s", k, ik))
				}
				if _, dup := out[ik]; dup {
					errs = append(errs, fmt.Errorf("%s: %s declared twice", k, ik))
				}
				out[ik] = iv
			}
		}
	}
	return out, errors.Join(errs...)
}

func substitute(v any, r *strings.Replacer) any {
	switch x := v.(type) {
	case string:
		return r.Replace(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substitute(e, r)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.Replace(k)] = substitute(e, r)
		}
		return out
	}
	return v
}

// addSchemaFile reads a JSON schema file and adds it to a new compiler
// under url.
func addSchemaFile(c **jsonschema.Compiler, url, file string) (any, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	*c = jsonschema.NewCompiler()
	return doc, (*c).AddResource(url, doc)
}

// asMap decodes what an intrinsics processor returned.
func asMap(b []byte, err error) (map[string]any, error) {
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}
