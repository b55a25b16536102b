"""One sentence per term an auditor reads, shared by every summary and report (issue 12 item 6).

Each definition says what the figure means in plain words and which way is good. Readers
(`fscert certify`, `fscert audit`, the HTML reports) show the terms they print with
:func:`terms`, so a figure never appears without its meaning.
"""
from __future__ import annotations

GLOSSARY: dict[str, str] = {
    "PSNR": "Peak signal-to-noise ratio between two images, 10·log10(1 / mean squared pixel difference) with "
            "pixels in [0, 1]; higher means more alike (identical images: infinite). fscert compares images at "
            "their stored size.",
    "γ": "The PSNR threshold in dB: an image within γ dB of a training image (PSNR ≥ γ) counts as a near-copy "
         "of it. 25 dB is a close likeness, 30 dB nearly indistinguishable.",
    "near-copy": "An image (generated, possible, or held-out real) whose PSNR to some training image is at least γ.",
    "not decidable": "A threshold γ above what the decoder can reproduce (its median reconstruction PSNR): finding "
                     "no near-copy there is expected whether or not the generator memorizes, so no verdict is given.",
    "reconstruction near-copy": "An output within γ dB of the decoder's reconstruction of a training image (its own "
                                "latent decoded): what the generator can actually output for that image, whatever "
                                "the decoder's sharpness.",
    "drawn set E": "The N·T latents drawn from the N training latents (T Rademacher trials each) that the FS-LAR "
                   "generator stitches its outputs from; a certificate is exact for this E.",
    "UIR": "Unique-image rate UIR(γ) (Eq. 9 of the FS-LAR paper): the fraction of images that are NOT near-copies of any "
           "training image; 1 means no copies, 0 means every image is a copy.",
    "M-UIR": "Mutual unique-image rate M-UIR(γ) (Eq. 10 of the FS-LAR paper): the fraction of images that are neither "
             "near-copies of a training image nor of another image in the same set (strict: of any other; "
             "greedy: of an earlier kept one); it also catches a generator repeating itself.",
    "memorization mass": "The probability that one image drawn from the generator is a near-copy of some "
                         "training image (exact: summed over every image the generator can produce).",
    "exposure": "For one training image: the probability that one generated image is a near-copy of it.",
    "reachable images": "Every image the generator can produce (every stitching of the drawn set E that its "
                        "sampler can reach), counted exactly.",
    "dead-end mass": "The probability that the sampler reaches a state with no compatible continuation; "
                     "certified probabilities are renormalised over the outputs that complete.",
    "fidelity floor": "How well the decoder reproduces the training images from their own latents (PSNR of "
                      "each reconstruction); at a γ above what it can reproduce, 'no near-copy' says nothing "
                      "and fscert reports the γ as not decidable.",
    "baseline": "The same statistics for held-out real images the generator never saw: what genuinely new "
                "images score, so a generator's rate can be read against it.",
    "AuthPct": "Authenticity (Alaa et al. 2022): the percentage of generated images that are authentic; an "
               "image is inauthentic when it lies closer to its nearest training image than that training image "
               "lies to its own nearest other training image. 100 % means every image is authentic.",
    "C_T": "Meehan et al.'s data-copying test: a z-score per cell comparing how close generated and held-out "
           "images lie to the training set; clearly negative (below about −2) means the generated images are "
           "closer than real unseen data: data copying; clearly positive means under-fitting.",
    "NN ratio": "Distance to the nearest training image divided by the distance to the second nearest; a small "
                "ratio (below the threshold) means an image sits on one particular training image.",
    "exact": "Computed over every reachable image with exact arithmetic on the stored probabilities.",
    "certified interval": "[low, high]: the true value is proven to lie in it; fscert gives an interval where "
                          "an exact figure would need listing more images than allowed.",
    "unknown": "Not examined: fscert never writes a number it did not compute.",
}


def terms(*names: str) -> list[tuple[str, str]]:
    """[(term, definition)] for ``names`` (every term when none is given), in the order given."""
    keys = names or tuple(GLOSSARY)
    missing = [k for k in keys if k not in GLOSSARY]
    if missing:
        raise KeyError(f"no glossary entry for {missing}")
    return [(k, GLOSSARY[k]) for k in keys]
