"""The lecture's PyTorch snippet, as the slide writes it (its minus sign restored).

Run it with python, or trace it: gradviz trace samples/lecture_snippet.py --merge-repeats
"""
import torch

x1 = torch.tensor(0.5, requires_grad = True)
x2 = torch.tensor(1.0, requires_grad = True)
f = (torch.exp(x1/x2) + x1/x2) * (x1/x2 - torch.log(x2))

f.backward() # executes reverse mode autodiff

print(x1.grad)
print(x2.grad)
