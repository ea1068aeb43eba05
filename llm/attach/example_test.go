package attach_test

import (
	"context"
	"fmt"

	"github.com/palaver-bot/palaver/llm/attach"
)

func ExamplePrepare() {
	in := attach.Input{Name: "hello.go", Data: []byte("package main\n\nfunc main() { println(\"hi\") }\n")}
	part, err := attach.Prepare(context.Background(), in, attach.Limits{})
	if err != nil {
		fmt.Println(attach.UserMessage(err))
		return
	}
	switch p := part.(type) {
	case *attach.Text:
		fmt.Print(p.Block)
	case *attach.Image:
		fmt.Println("image", p.Width, p.Height)
	}
	// Output:
	// File: hello.go (Go source, 44 bytes)
	// ```go
	// package main
	//
	// func main() { println("hi") }
	// ```
}

func ExampleUserMessage() {
	_, err := attach.Prepare(context.Background(), attach.Input{Data: make([]byte, 50<<20)}, attach.Limits{})
	fmt.Println(attach.UserMessage(err))
	// Output: This file is 50 MB; Palaver reads files up to 20 MB.
}
